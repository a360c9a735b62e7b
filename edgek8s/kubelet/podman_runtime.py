"""ContainerRuntime over Podman's REST API (PyPI ``podman`` bindings); the only importer of ``podman``.

The bindings are blocking (requests over a unix socket): every call runs in a thread of the runtime's
own pool, larger than the pod workers' concurrency, so slow calls (a pod start sets up its network)
never queue the quick ones, nor the agent's other blocking work, behind them in asyncio's default pool;
its errors become ``RuntimeFailure``. A relist is one call (pods filtered by the pod-uid label, with
their members' states) plus an inspect of each member that is new or changed state: Podman's
container list costs O(all containers) even when filtered. What an inspect reports besides the state
(labels, image, start time, an exited container's end) never changes, and sandbox IPs neither, so each
is cached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import podman
from podman import api
from podman import errors as podman_errors

from edgek8s.kubelet.podman_host import PodmanHost
from edgek8s.kubelet.runtime import (
    LABEL_ATTEMPT,
    LABEL_CONTAINER_NAME,
    LABEL_INIT,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_SPEC_HASH,
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImageNotFound,
    RuntimeFailure,
    RuntimePod,
    SandboxConfig,
    SandboxStatus,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
CPU_PERIOD = 100_000
IMAGE_LIST_TTL = 300.0  # images loaded behind the agent's back (podman load) show up within this
CALL_THREADS = 12  # > the pod workers' 8 syncs at once, plus relist, probes and the event log


_STATES = {"running": ContainerState.RUNNING, "created": ContainerState.CREATED,
           "configured": ContainerState.CREATED, "exited": ContainerState.EXITED,
           "stopped": ContainerState.EXITED, "stopping": ContainerState.RUNNING,
           "paused": ContainerState.RUNNING}
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _time(value: Any) -> str:
    """RFC 3339 (seconds, UTC) from Podman's unix seconds or its RFC 3339 nanosecond strings (which carry
    the service's local offset): a list and an inspect of one container give the same text."""
    if isinstance(value, int | float):
        if value <= 0:
            return ""
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    elif isinstance(value, str) and value and not value.startswith("0001"):
        match = _RFC3339.match(value)
        if match is None:
            return ""
        offset = "+00:00" if match[2] in (None, "Z") else match[2]
        moment = datetime.datetime.fromisoformat(match[1] + offset).astimezone(datetime.UTC)
    else:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class PodmanRuntime:
    def __init__(self, host: PodmanHost) -> None:
        self.host = host
        self._client: podman.PodmanClient | None = None
        self._ips: dict[str, str] = {}  # sandbox id -> IP
        self._exited: dict[str, tuple[str, str, int]] = {}  # container id -> (reason, finishedAt, exit code)
        self._version = ""
        self._events_offset = 0
        self._image_list: tuple[float, list[ImageInfo]] | None = None
        self._images: dict[str, tuple[float, str | None]] = {}  # image -> (when looked up, id)
        self._members: dict[str, tuple[str, ContainerStatus]] = {}  # container id -> (Podman state, status)
        self._own_starts: set[str] = set()  # containers this runtime is starting: their start is no news
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def client(self) -> podman.PodmanClient:
        if self._client is None:
            raise RuntimeFailure("the Podman runtime is not started")
        return self._client

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs))
        except podman_errors.ImageNotFound as exc:
            raise ImageNotFound(str(exc)) from exc
        except (podman_errors.PodmanError, OSError) as exc:
            raise RuntimeFailure(f"podman: {exc}") from exc

    async def start(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="podman")
        self._client = podman.PodmanClient(base_url=f"unix://{self.host.socket}", timeout=120)
        with contextlib.suppress(FileNotFoundError):  # only what happens from now on is news
            self._events_offset = self.host.events_log.stat().st_size
        await self._ensure_network()

    async def stop(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _ensure_network(self) -> None:
        name = self.host.config.network
        if await self._call(self.client.networks.exists, name):
            return
        cidr = ipaddress.ip_network(self.host.config.pod_cidr)
        body = {
            "name": name, "driver": "bridge", "network_interface": self.host.bridge,
            "subnets": [{"subnet": str(cidr), "gateway": str(next(cidr.hosts()))}],
            "labels": {"io.edgek8s.network": "pods"},
        }
        response = await self._call(self.client.api.post, "/networks/create", data=json.dumps(body))
        if response.status_code >= 400 and not await self._call(self.client.networks.exists, name):
            raise RuntimeFailure(f"podman network create {name}: {response.text}")
        logger.info("created the pod network %s (%s on %s)", name, cidr, self.host.bridge)

    async def version(self) -> str:
        if not self._version:  # a running service does not change version
            info = await self._call(self.client.version)
            self._version = f"podman://{info.get('Version', 'unknown')}"
        return self._version

    def _check(self, response: Any, what: str, *, ok: tuple[int, ...] = ()) -> Any:
        if response.status_code >= 400 and response.status_code not in ok:
            if response.status_code == 404 and "image" in response.text.lower():
                raise ImageNotFound(f"{what}: {response.text.strip()}")
            raise RuntimeFailure(f"{what}: {response.text.strip()}")
        return response

    # -- relist -----------------------------------------------------------------------------------

    async def list_pods(self, *, uid: str | None = None) -> list[RuntimePod]:
        label = {"label": [LABEL_POD_UID if uid is None else f"{LABEL_POD_UID}={uid}"]}
        pods_raw = self._check(await self._call(self.client.api.get, "/pods/json",
                                                params={"filters": json.dumps(label)}), "podman pod ps")
        pods: list[dict[str, Any]] = pods_raw.json() or []
        if uid is not None and not pods:
            return await self._leftover_containers(uid)
        # Containers live in their sandbox (created with it, removed with it): the pods' member lists name
        # them all, and Podman's container list, O(all containers) even filtered, is not needed.
        groups: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            groups.setdefault((pod.get("Labels") or {}).get(LABEL_POD_UID, ""), []).append(pod)
        result = [await self._one_pod(pod_uid, group) for pod_uid, group in groups.items()]
        if uid is None:  # a full relist: forget what no longer exists
            live = {s.id for rp in result for s in rp.sandboxes}
            self._ips = {k: v for k, v in self._ips.items() if k in live}
            seen = {c.id for rp in result for c in rp.containers}
            self._exited = {k: v for k, v in self._exited.items() if k in seen}
            self._members = {k: v for k, v in self._members.items() if k in seen}
        return result

    async def _leftover_containers(self, uid: str) -> list[RuntimePod]:
        """Containers with the pod's label and no sandbox (made by someone else, or a removal cut short)."""
        label = {"label": [f"{LABEL_POD_UID}={uid}"]}
        ctrs_raw = self._check(await self._call(
            self.client.api.get, "/containers/json", params={"all": "true", "filters": json.dumps(label)}
        ), "podman ps")
        containers = [await self._container_status(raw) for raw in ctrs_raw.json() or []]
        return [RuntimePod(uid=uid, containers=tuple(containers))] if containers else []

    async def _one_pod(self, uid: str, pods: list[dict[str, Any]]) -> RuntimePod:
        """One pod from its sandboxes' member lists. Podman's container list costs O(all containers) even
        when filtered (measured with 100 pods: 24 ms of its CPU per call; pods/json 3.5 ms, an inspect
        2 ms): a member is inspected only when new or when its state moved, else its last status stands
        (what an inspect reports besides the state never changes for a container)."""
        sandboxes, containers = [], []
        for pod in pods:
            sandboxes.append(await self._sandbox(pod))
            for member in pod.get("Containers") or []:
                if member.get("Id") == pod.get("InfraId"):
                    continue
                state = str(member.get("Status", ""))
                known = self._members.get(member["Id"])
                if known is None or known[0] != state:
                    response = await self._call(self.client.api.get, f"/containers/{member['Id']}/json")
                    if response.status_code >= 400:
                        continue  # removed meanwhile
                    known = (state, self._inspected_status(response.json()))
                    self._members[member["Id"]] = known
                containers.append(known[1])
        return RuntimePod(uid=uid, sandboxes=tuple(sandboxes), containers=tuple(containers))

    async def _sandbox(self, pod: dict[str, Any]) -> SandboxStatus:
        labels = pod.get("Labels") or {}
        ready = pod.get("Status") in ("Running", "Degraded")
        ip = self._ips.get(pod["Id"], "")
        if ready and not ip and pod.get("InfraId"):
            ip = await self._infra_ip(pod["Id"], pod["InfraId"])
        return SandboxStatus(
            id=pod["Id"], uid=labels.get(LABEL_POD_UID, ""), name=labels.get(LABEL_POD_NAME, ""),
            namespace=labels.get(LABEL_POD_NAMESPACE, ""), ready=ready, ip=ip, created_at=_time(pod.get("Created")),
        )

    async def _infra_ip(self, pod_id: str, infra_id: str) -> str:
        response = await self._call(self.client.api.get, f"/containers/{infra_id}/json")
        if response.status_code >= 400:
            return ""
        networks = (response.json().get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress", "") for n in networks.values() if n.get("IPAddress")), "")
        if ip:
            self._ips[pod_id] = ip
        return str(ip)

    async def _container_status(self, raw: dict[str, Any]) -> ContainerStatus:
        """From an entry of Podman's container list (an exited one is inspected once, for its exit)."""
        labels = raw.get("Labels") or {}
        state = _STATES.get(str(raw.get("State")), ContainerState.UNKNOWN)
        if state == ContainerState.EXITED and raw["Id"] not in self._exited:
            response = await self._call(self.client.api.get, f"/containers/{raw['Id']}/json")
            detail = response.json().get("State", {}) if response.status_code < 400 else {}
            self._remember_exit(raw["Id"], detail, fallback_code=raw.get("ExitCode"),
                                fallback_finished=raw.get("ExitedAt"))
        return self._status(raw["Id"], labels, state, image=raw.get("Image"), image_id=raw.get("ImageID"),
                            created=raw.get("Created"), started=raw.get("StartedAt"))

    def _status(self, container_id: str, labels: dict[str, str], state: ContainerState, *, image: Any,
                image_id: Any, created: Any, started: Any) -> ContainerStatus:
        reason, finished, exit_code = "", "", None
        if state == ContainerState.EXITED:
            reason, finished, exit_code = self._exited[container_id]
        return ContainerStatus(
            id=container_id, name=labels.get(LABEL_CONTAINER_NAME, ""), attempt=int(labels.get(LABEL_ATTEMPT, 0)),
            spec_hash=labels.get(LABEL_SPEC_HASH, ""), init=labels.get(LABEL_INIT) == "true", state=state,
            image=str(image or ""), image_id=str(image_id or ""), exit_code=exit_code, reason=reason,
            created_at=_time(created), started_at=_time(started), finished_at=finished,
        )

    def _remember_exit(self, container_id: str, detail: dict[str, Any], *, fallback_code: Any = 0,
                       fallback_finished: Any = None) -> None:
        code = int(detail.get("ExitCode", fallback_code) or 0)
        why = "OOMKilled" if detail.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        self._exited[container_id] = (why, _time(detail.get("FinishedAt") or fallback_finished), code)

    def _inspected_status(self, attrs: dict[str, Any]) -> ContainerStatus:
        """The same status as ``_container_status``, from a container inspect."""
        detail = attrs.get("State") or {}
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        state = _STATES.get(str(detail.get("Status")), ContainerState.UNKNOWN)
        if state == ContainerState.EXITED:
            self._remember_exit(attrs["Id"], detail)
        return self._status(attrs["Id"], labels, state, image=attrs.get("ImageName"), image_id=attrs.get("Image"),
                            created=attrs.get("Created"), started=detail.get("StartedAt"))

    # -- sandboxes ---------------------------------------------------------------------------------

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        labels = {LABEL_POD_UID: config.uid, LABEL_POD_NAME: config.name, LABEL_POD_NAMESPACE: config.namespace}
        kwargs: dict[str, Any] = {"labels": labels, "hostname": config.hostname[:63]}
        if config.host_network:
            kwargs["netns"] = {"nsmode": "host"}
        else:
            kwargs["networks"] = {self.host.config.network: {}}
            kwargs["portmappings"] = [
                {"container_port": p.container_port, "host_port": p.host_port, "protocol": p.protocol.lower(),
                 **({"host_ip": p.host_ip} if p.host_ip else {})}
                for p in config.ports
            ]
        kwargs["name"] = f"k8s_{config.name}_{config.namespace}_{config.uid[:8]}"
        # Raw calls: the bindings' create would inspect the new pod a second time.
        created = self._check(await self._call(self.client.api.post, "/pods/create", data=json.dumps(kwargs)),
                              "podman pod create")
        pod_id = str(created.json()["Id"])
        self._check(await self._call(self.client.api.post, f"/pods/{pod_id}/start"), "podman pod start", ok=(304,))
        attrs = self._check(await self._call(self.client.api.get, f"/pods/{pod_id}/json"), "podman pod inspect").json()
        ip = "" if config.host_network else await self._infra_ip(pod_id, str(attrs.get("InfraContainerID", "")))
        return SandboxStatus(id=pod_id, uid=config.uid, name=config.name, namespace=config.namespace, ready=True,
                             ip=ip, created_at=_time(attrs.get("Created")))

    async def remove_sandbox(self, sandbox_id: str, *, timeout: float) -> None:
        response = await self._call(self.client.api.post, f"/pods/{sandbox_id}/stop",
                                    params={"t": str(max(0, round(timeout)))})
        if response.status_code >= 400 and response.status_code != 404:
            logger.warning("podman pod stop %s: %s", sandbox_id[:12], response.text.strip())
        response = await self._call(self.client.api.delete, f"/pods/{sandbox_id}", params={"force": "true"})
        if response.status_code >= 400 and response.status_code != 404:
            raise RuntimeFailure(f"podman pod rm {sandbox_id[:12]}: {response.text.strip()}")
        self._ips.pop(sandbox_id, None)

    # -- images ------------------------------------------------------------------------------------

    async def image_id(self, image: str) -> str | None:
        # Inspecting an image makes Podman rewrite its image store (~17 KB per call): a found image is
        # remembered until this runtime changes images (or IMAGE_LIST_TTL), a missing one for 2 s.
        cached = self._images.get(image)
        if cached is not None and time.monotonic() - cached[0] < (IMAGE_LIST_TTL if cached[1] else 2.0):
            return cached[1]
        try:
            found = await self._call(self.client.images.get, image)
            image_id: str | None = str(found.id)
        except ImageNotFound:
            image_id = None
        self._images[image] = (time.monotonic(), image_id)
        return image_id

    async def pull_image(self, image: str) -> str:
        self._images.pop(image, None)
        self._image_list = None
        try:
            pulled = await self._call(self.client.images.pull, image)
        except RuntimeFailure as exc:
            raise ImageNotFound(f"pulling {image}: {exc}") from exc
        found: Any = pulled[0] if isinstance(pulled, list) else pulled
        return str(found.id)

    async def list_images(self) -> list[ImageInfo]:
        # Listing images makes Podman rewrite its image store (measured: ~18 KB written per call), so the
        # list is cached until this runtime pulls, loads or removes one, or for IMAGE_LIST_TTL at most.
        if self._image_list is not None and time.monotonic() - self._image_list[0] < IMAGE_LIST_TTL:
            return list(self._image_list[1])
        # Podman 4.3 answers 500 (a JSON error object, not a list) while an image is loaded or removed.
        response = self._check(await self._call(self.client.api.get, "/images/json"), "podman images")
        images = [
            ImageInfo(id=str(i["Id"]), names=tuple(i.get("RepoTags") or i.get("Names") or ()),
                      size=int(i.get("Size", 0)))
            for i in response.json() or []
        ]
        self._image_list = (time.monotonic(), images)
        return list(images)

    async def remove_image(self, image_id: str) -> None:
        self._images.clear()
        self._image_list = None
        await self._call(self.client.images.remove, image_id)

    async def import_image(self, archive: Path) -> list[str]:
        self._images.clear()
        self._image_list = None
        data = await asyncio.to_thread(archive.read_bytes)
        images = await self._call(lambda: list(self.client.images.load(data)))
        return [tag for image in images for tag in image.tags]

    # -- containers --------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, pod: SandboxConfig, config: ContainerConfig) -> str:
        labels = {
            LABEL_POD_UID: pod.uid, LABEL_POD_NAME: pod.name, LABEL_POD_NAMESPACE: pod.namespace,
            LABEL_CONTAINER_NAME: config.name, LABEL_ATTEMPT: str(config.attempt), LABEL_SPEC_HASH: config.spec_hash,
            LABEL_INIT: "true" if config.init else "false",
        }
        kwargs: dict[str, Any] = {
            "name": f"k8s_{config.name}_{pod.name}_{pod.namespace}_{pod.uid[:8]}_{config.attempt}",
            "pod": sandbox_id, "labels": labels, "environment": dict(config.env),
            "mounts": [{"type": "bind", "source": m.host_path, "target": m.container_path, "read_only": m.read_only}
                       for m in config.mounts],
            "read_only": config.read_only_root, "privileged": config.privileged, "tty": config.tty,
            "stdin_open": config.stdin,
        }
        if config.entrypoint is not None:
            kwargs["entrypoint"] = list(config.entrypoint)
        if config.args is not None:
            kwargs["command"] = list(config.args)
        elif config.entrypoint is not None:
            kwargs["command"] = []
        if config.working_dir:
            kwargs["working_dir"] = config.working_dir
        if config.run_as_user is not None:
            group = f":{config.run_as_group}" if config.run_as_group is not None else ""
            kwargs["user"] = f"{config.run_as_user}{group}"
        if config.memory_limit_bytes:
            kwargs["mem_limit"] = config.memory_limit_bytes
        if config.cpu_limit_millis:
            kwargs["cpu_period"] = CPU_PERIOD
            kwargs["cpu_quota"] = config.cpu_limit_millis * CPU_PERIOD // 1000
        if config.cpu_request_millis:
            kwargs["cpu_shares"] = max(2, config.cpu_request_millis * 1024 // 1000)
        # The bindings render the payload; the POST is ours (their create() inspects the new container again).
        payload = api.prepare_body(self.client.containers._render_payload(
            {"image": config.image, **kwargs}))
        response = await self._call(self.client.api.post, "/containers/create", data=payload,
                                    headers={"content-type": "application/json"})
        try:
            return str(self._check(response, f"podman create {config.name}").json()["Id"])
        except ImageNotFound:
            self._images.pop(config.image, None)  # removed behind our back: look again next time
            raise

    async def start_container(self, container_id: str) -> None:
        self._own_starts.add(container_id)  # before the call: its event cannot be read earlier
        try:
            response = await self._call(self.client.api.post, f"/containers/{container_id}/start")
        except RuntimeFailure:
            self._own_starts.discard(container_id)
            raise
        if response.status_code >= 400 and response.status_code != 304:
            self._own_starts.discard(container_id)
            raise RuntimeFailure(f"podman start: {response.text.strip()}")

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        response = await self._call(self.client.api.post, f"/containers/{container_id}/stop",
                                    params={"timeout": str(max(0, round(timeout)))})
        if response.status_code >= 400 and response.status_code not in (304, 404):
            raise RuntimeFailure(f"podman stop: {response.text.strip()}")

    async def remove_container(self, container_id: str) -> None:
        response = await self._call(self.client.api.delete, f"/containers/{container_id}",
                                    params={"force": "true", "v": "true"})
        if response.status_code >= 400 and response.status_code != 404:
            raise RuntimeFailure(f"podman rm: {response.text.strip()}")
        self._exited.pop(container_id, None)
        self._members.pop(container_id, None)
        self._own_starts.discard(container_id)

    async def wait_changes(self, timeout: float) -> set[str]:
        """Tail Podman's event log (tmpfs) for container starts and deaths, polling its size every 0.2 s."""
        deadline = time.monotonic() + timeout
        while True:
            changed = await asyncio.to_thread(self._read_events)
            if changed or time.monotonic() >= deadline:
                return changed
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _read_events(self) -> set[str]:
        path = self.host.events_log
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return set()
        if size < self._events_offset:  # Podman rotated the log (events_logfile_max_size)
            self._events_offset = 0
        if size == self._events_offset:
            return set()
        with path.open("rb") as handle:
            handle.seek(self._events_offset)
            data = handle.read(size - self._events_offset)
        complete = data.rfind(b"\n") + 1
        self._events_offset += complete
        changed = set()
        for line in data[:complete].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            labels = event.get("Attributes") or {}
            uid, status = labels.get(LABEL_POD_UID), event.get("Status")
            if not uid or event.get("Type") != "container" or status not in ("died", "start", "remove"):
                continue
            if status == "start" and (event.get("ID") in self._own_starts or LABEL_CONTAINER_NAME not in labels):
                # Started by this runtime (an app container, or a sandbox's infra container, which carries
                # the pod's labels but no container name): the syncer that did it reads the result itself.
                # Waking the worker again would cost a second relist of the pod for nothing.
                self._own_starts.discard(str(event.get("ID")))
                continue
            changed.add(str(uid))
        return changed

    async def exec_probe(self, container_id: str, command: list[str], *, timeout: float) -> ExecResult:
        container = await self._call(self.client.containers.get, container_id)
        code, output = await asyncio.wait_for(self._call(container.exec_run, command, demux=True), timeout)
        data = b"".join(part or b"" for part in output) if isinstance(output, tuple) else b""
        return ExecResult(exit_code=int(code if code is not None else -1), output=data)
