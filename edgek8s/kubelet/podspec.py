"""From an API pod to runtime configs: environment (values, valueFrom, envFrom, $(VAR) expansion),
ports, resources, security context, and a hash of each container's spec (a changed hash means the
container must be recreated, as upstream's kubelet does).

``ConfigError`` here means the pod cannot start as written (a missing ConfigMap key, a bad quantity):
the kubelet reports it as ``CreateContainerConfigError`` and retries on its next sync.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from edgek8s.kubelet.runtime import ContainerConfig, Mount, PortMapping, SandboxConfig
from edgek8s.kubelet.sources import ObjectSource
from edgek8s.model.quantity import milli_value
from edgek8s.model.quantity import value as quantity_value

Obj = dict[str, Any]
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class PodConfigError(Exception):
    """The pod's spec cannot be turned into a container (reason CreateContainerConfigError)."""


def spec_hash(container: Obj) -> str:
    return hashlib.sha256(json.dumps(container, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def expand(value: str, env: dict[str, str]) -> str:
    """Upstream's $(VAR) expansion: known names are replaced, unknown ones kept, $$ escapes."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR.sub(replace, value)


def sandbox_config(pod: Obj) -> SandboxConfig:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(PortMapping(
                    container_port=int(port["containerPort"]), host_port=int(port["hostPort"]),
                    protocol=str(port.get("protocol", "TCP")), host_ip=str(port.get("hostIP", ""))))
    return SandboxConfig(
        uid=meta["uid"], name=meta["name"], namespace=meta.get("namespace", "default"),
        hostname=str(spec.get("hostname") or meta["name"]), ports=tuple(ports),
        host_network=bool(spec.get("hostNetwork")),
    )


def field_ref(pod: Obj, path: str, *, host_ip: str, pod_ip: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"), "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"), "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": host_ip, "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)(?:\['([^']+)'\])?", path)
    if match:
        values = meta.get(match.group(1)) or {}
        if match.group(2) is not None:
            return str(values.get(match.group(2), ""))
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    raise PodConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(container: Obj, ref: Obj) -> str:
    resource = str(ref.get("resource", ""))
    section, _, name = resource.partition(".")
    amount = ((container.get("resources") or {}).get(section) or {}).get(name)
    if amount is None:
        return "0"
    divisor = ref.get("divisor") or "1"
    if name == "cpu":
        return str(max(1, -(-milli_value(amount) // milli_value(divisor))))
    return str(-(-quantity_value(amount) // max(1, quantity_value(divisor))))


def _decode(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "secrets":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
        return data
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}


async def _key_ref(source: ObjectSource, kind: str, namespace: str, ref: Obj) -> str | None:
    name, key, optional = str(ref.get("name", "")), str(ref.get("key", "")), bool(ref.get("optional"))
    obj = await source.get(kind, namespace, name)
    what = "configmap" if kind == "configmaps" else "secret"
    if obj is None:
        if optional:
            return None
        raise PodConfigError(f'{what} "{name}" not found')
    data = _decode(kind, obj)
    if key not in data:
        if optional:
            return None
        raise PodConfigError(f'couldn\'t find key {key} in {what} {namespace}/{name}')
    return data[key]


async def container_env(pod: Obj, container: Obj, source: ObjectSource, *, host_ip: str, pod_ip: str) -> dict[str, str]:
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    for entry in container.get("envFrom") or []:
        prefix = str(entry.get("prefix", ""))
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = entry.get(key)
            if ref is None:
                continue
            obj = await source.get(kind, namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                what = "configmap" if kind == "configmaps" else "secret"
                raise PodConfigError(f'{what} "{ref.get("name")}" not found')
            for key_name, key_value in _decode(kind, obj).items():
                env[prefix + key_name] = key_value
    for var in container.get("env") or []:
        name = str(var["name"])
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value_from = var["valueFrom"]
        value: str | None
        if "configMapKeyRef" in value_from:
            value = await _key_ref(source, "configmaps", namespace, value_from["configMapKeyRef"])
        elif "secretKeyRef" in value_from:
            value = await _key_ref(source, "secrets", namespace, value_from["secretKeyRef"])
        elif "fieldRef" in value_from:
            value = field_ref(pod, str(value_from["fieldRef"].get("fieldPath", "")), host_ip=host_ip, pod_ip=pod_ip)
        elif "resourceFieldRef" in value_from:
            value = _resource_ref(container, value_from["resourceFieldRef"])
        else:
            raise PodConfigError(f"env {name}: unsupported valueFrom {sorted(value_from)}")
        if value is not None:
            env[name] = value
    return env


def _resources(container: Obj) -> tuple[int | None, int | None, int | None]:
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    try:
        cpu_limit = milli_value(limits["cpu"]) if "cpu" in limits else None
        cpu_request = milli_value(requests["cpu"]) if "cpu" in requests else cpu_limit
        memory_limit = quantity_value(limits["memory"]) if "memory" in limits else None
    except ValueError as exc:
        raise PodConfigError(str(exc)) from None
    return cpu_request, cpu_limit, memory_limit


def container_config(
    pod: Obj, container: Obj, *, attempt: int, init: bool, env: dict[str, str], mounts: tuple[Mount, ...]
) -> ContainerConfig:
    spec = pod.get("spec") or {}
    pod_security = spec.get("securityContext") or {}
    security = container.get("securityContext") or {}
    cpu_request, cpu_limit, memory_limit = _resources(container)
    command = container.get("command")
    args = container.get("args")
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    return ContainerConfig(
        name=str(container["name"]), attempt=attempt, spec_hash=spec_hash(container), image=str(container["image"]),
        init=init,
        entrypoint=tuple(expand(str(c), env) for c in command) if command else None,
        args=tuple(expand(str(a), env) for a in args) if args else None,
        env=env, mounts=mounts, working_dir=container.get("workingDir") or None,
        cpu_request_millis=cpu_request, cpu_limit_millis=cpu_limit, memory_limit_bytes=memory_limit,
        run_as_user=int(user) if user is not None else None, run_as_group=int(group) if group is not None else None,
        read_only_root=bool(security.get("readOnlyRootFilesystem")), privileged=bool(security.get("privileged")),
        tty=bool(container.get("tty")), stdin=bool(container.get("stdin")),
    )
