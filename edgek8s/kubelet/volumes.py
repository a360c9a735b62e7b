"""Pod volumes on the node's disk: emptyDir, hostPath, configMap, secret, downwardAPI.

Each pod has ``<pods dir>/<uid>/volumes/<name>``; files of configMap, secret and downwardAPI volumes are
(re)written on every sync, only where their content changed, so updates reach running pods and an
idle pod costs no writes. ``teardown`` removes a pod's directory
once its containers are gone. hostPath is used as given (the ``type`` checks are done).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from edgek8s.kubelet.podspec import PodConfigError, field_ref
from edgek8s.kubelet.runtime import Mount
from edgek8s.kubelet.sources import ObjectSource

Obj = dict[str, Any]


def _write_if_changed(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            return
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _sync_files(directory: Path, files: dict[str, tuple[bytes, int]], dir_mode: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(dir_mode)
    for relative, (data, mode) in files.items():
        target = (directory / relative).resolve()
        if directory.resolve() not in target.parents:
            raise PodConfigError(f"volume item path {relative!r} escapes the volume")
        _write_if_changed(target, data, mode)
    wanted = {(directory / r).resolve() for r in files}
    for existing in directory.rglob("*"):
        if existing.is_file() and existing.resolve() not in wanted and not existing.name.startswith("."):
            existing.unlink()


def _project(data: dict[str, bytes], items: list[Obj] | None, default_mode: int) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            raise PodConfigError(f"volume item key {key!r} not found")
        files[str(item.get("path", key))] = (data[key], int(item.get("mode", default_mode)))
    return files


def _host_path(source: Obj) -> str:
    path = Path(str(source.get("path", "")))
    kind = source.get("type") or ""
    if not path.is_absolute():
        raise PodConfigError(f"hostPath {path} must be absolute")
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    elif kind == "Directory" and not path.is_dir():
        raise PodConfigError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise PodConfigError(f"hostPath type check failed: {path} is not a file")
    return str(path)


class VolumeManager:
    def __init__(self, pods_dir: Path, source: ObjectSource) -> None:
        self.pods_dir = pods_dir
        self._source = source

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    async def prepare(self, pod: Obj, *, host_ip: str, pod_ip: str) -> dict[str, str]:
        """Materialise every volume of ``pod``; volume name -> host path."""
        namespace = pod["metadata"].get("namespace", "default")
        root = self.pod_dir(pod["metadata"]["uid"]) / "volumes"
        paths: dict[str, str] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume["name"])
            directory = root / name
            if "hostPath" in volume:
                paths[name] = await asyncio.to_thread(_host_path, volume["hostPath"])
                continue
            files: dict[str, tuple[bytes, int]] | None = None
            dir_mode = 0o755
            if "configMap" in volume or "secret" in volume:
                kind = "configmaps" if "configMap" in volume else "secrets"
                source = volume.get("configMap") or volume.get("secret") or {}
                name_key = "name" if kind == "configmaps" else "secretName"
                obj = await self._source.get(kind, namespace, str(source.get(name_key, "")))
                if obj is None:
                    if not source.get("optional"):
                        what = "configmap" if kind == "configmaps" else "secret"
                        raise PodConfigError(f'{what} "{source.get(name_key)}" not found')
                    obj = {}
                data: dict[str, bytes]
                if kind == "secrets":
                    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
                else:
                    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
                    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
                files = _project(data, source.get("items"), int(source.get("defaultMode", 0o644)))
            elif "downwardAPI" in volume:
                source = volume["downwardAPI"]
                default_mode = int(source.get("defaultMode", 0o644))
                files = {}
                for item in source.get("items") or []:
                    if "fieldRef" in item:
                        value = field_ref(pod, str(item["fieldRef"].get("fieldPath", "")), host_ip=host_ip,
                                           pod_ip=pod_ip)
                    else:
                        raise PodConfigError("downwardAPI volumes support fieldRef items only")
                    files[str(item["path"])] = (value.encode(), int(item.get("mode", default_mode)))
            elif "emptyDir" in volume:
                await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
                await asyncio.to_thread(directory.chmod, 0o777)
            else:
                raise PodConfigError(f"volume {name}: only emptyDir, hostPath, configMap, secret and downwardAPI "
                                     "volumes are supported")
            if files is not None:
                await asyncio.to_thread(_sync_files, directory, files, dir_mode)
            paths[name] = str(directory)
        return paths

    @staticmethod
    def mounts(container: Obj, paths: dict[str, str]) -> tuple[Mount, ...]:
        mounts = []
        for mount in container.get("volumeMounts") or []:
            name = str(mount["name"])
            if name not in paths:
                raise PodConfigError(f"volumeMount {name!r} names no volume of the pod")
            host = paths[name]
            sub = str(mount.get("subPath") or "")
            if sub:
                if sub.startswith("/") or ".." in Path(sub).parts:
                    raise PodConfigError(f"subPath {sub!r} must be a relative path inside the volume")
                host = str(Path(host) / sub)
                with contextlib.suppress(OSError):
                    if not Path(host).exists():
                        Path(host).mkdir(parents=True)
            mounts.append(Mount(host_path=host, container_path=str(mount["mountPath"]),
                                read_only=bool(mount.get("readOnly"))))
        return tuple(mounts)

    async def teardown(self, uid: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(uid), True)
