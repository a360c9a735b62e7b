"""The Node object of this worker: registration, conditions from real measurements, and the heartbeat.

Heartbeat: the Lease ``kube-node-lease/<node>`` is renewed every ``lease_renew_interval`` (10 s, as
upstream: a quarter of the 40 s lease). The Node status is *measured* every ``node_status_interval`` but
*written* only when something changed (a condition, capacity, images) or every
``node_status_report_interval`` (5 min, upstream's nodeStatusReportFrequency), so an idle node costs the
masters one small Raft entry per renew interval and nothing else.

Conditions: MemoryPressure when MemAvailable < threshold; DiskPressure when the data dir's filesystem has
less than the threshold free; PIDPressure when free PIDs fall below the threshold; Ready otherwise true
while the runtime answers.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import platform
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgek8s._util.waiting import wait_event
from edgek8s.client.interface import ClusterClient
from edgek8s.config import AgentConfig
from edgek8s.kubelet.status import now_rfc3339
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
NODES = by_id(resource_id("", "nodes"))
LEASES = by_id(resource_id("coordination.k8s.io", "leases"))
KUBELET_VERSION = "v1.32.0-edgek8s"
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
        "armv6l": "arm", "armhf": "arm"}


def node_arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return ARCH.get(machine, machine)


@dataclass(frozen=True, slots=True)
class HostMeasure:
    cpus: int
    memory_total: int
    memory_available: int
    disk_total: int
    disk_free: int
    pid_max: int
    pids: int


def measure(data_dir: Path) -> HostMeasure:
    """Blocking /proc and statvfs reads (run in a thread)."""
    meminfo: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        meminfo[key] = int(rest.split()[0]) * 1024 if rest.split() else 0
    stat = os.statvfs(data_dir)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    pids = sum(1 for entry in os.scandir("/proc") if entry.name.isdigit())
    return HostMeasure(cpus=os.cpu_count() or 1, memory_total=meminfo.get("MemTotal", 0),
                       memory_available=meminfo.get("MemAvailable", 0), disk_total=stat.f_blocks * stat.f_frsize,
                       disk_free=stat.f_bavail * stat.f_frsize, pid_max=pid_max, pids=pids)


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def detect_node_ip(masters: tuple[str, ...]) -> str:
    """The local address that routes to the first master (no packet is sent)."""
    host = urlsplit(masters[0]).hostname or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, 9))
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _quantity_bytes(value: int) -> str:
    return f"{value // 1024}Ki"


class NodeStatusManager:
    def __init__(self, config: AgentConfig, api: ClusterClient, *, node_ip: str,
                 runtime_version: Callable[[], Awaitable[str]],
                 images: Callable[[], Awaitable[list[Obj]]], on_disk_pressure: Callable[[], Awaitable[None]]) -> None:
        self.config = config
        self._api = api
        self.node_ip = node_ip
        self._runtime_version = runtime_version
        self._images = images
        self._on_disk_pressure = on_disk_pressure
        self._written: Obj | None = None
        self._written_at = 0.0
        # Lease renewals that failed or came late, then went through again (``lease_loop``), and how many of
        # those the last status write followed (``status_loop``).
        self._reconnections = 0
        self._reported_reconnections = 0
        self._reconnected = asyncio.Event()  # wakes the status loop at once
        self._conditions: dict[str, Obj] = {}
        self.registered = asyncio.Event()
        self.runtime_ok = True
        self.last_measure: HostMeasure | None = None

    def _labels(self) -> dict[str, str]:
        labels = {"kubernetes.io/arch": node_arch(), "kubernetes.io/os": "linux",
                  "kubernetes.io/hostname": self.config.node_name, "beta.kubernetes.io/arch": node_arch(),
                  "beta.kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "edgek8s"}
        labels.update(dict(self.config.labels))
        return labels

    def _condition(self, kind: str, bad: bool, reason_bad: str, reason_ok: str, message: str) -> Obj:
        status = ("True" if not bad else "False") if kind == "Ready" else ("True" if bad else "False")
        old = self._conditions.get(kind)
        transition = old["lastTransitionTime"] if old and old["status"] == status else now_rfc3339()
        condition = {"type": kind, "status": status, "reason": reason_bad if bad else reason_ok, "message": message,
                     "lastTransitionTime": transition}
        self._conditions[kind] = condition
        return condition

    async def build_status(self) -> Obj:
        m = await asyncio.to_thread(measure, self.config.data_dir)
        self.last_measure = m
        c = self.config
        memory_pressure = m.memory_available < c.memory_pressure_bytes
        disk_pressure = m.disk_total > 0 and 100.0 * m.disk_free / m.disk_total < c.disk_pressure_percent
        pid_pressure = 100.0 * (m.pid_max - m.pids) / m.pid_max < c.pid_pressure_percent
        capacity = {"cpu": str(m.cpus), "memory": _quantity_bytes(m.memory_total), "pods": str(c.max_pods),
                    "ephemeral-storage": _quantity_bytes(m.disk_total)}
        allocatable = {
            "cpu": f"{max(0, m.cpus * 1000 - c.reserved_cpu_millis)}m",
            "memory": _quantity_bytes(max(0, m.memory_total - c.reserved_memory_bytes)),
            "pods": str(c.max_pods),
            "ephemeral-storage": _quantity_bytes(max(0, m.disk_total - c.reserved_storage_bytes)),
        }
        # Messages are fixed texts (as upstream's): a measured number in them would change the status,
        # and so cost a Raft write on every master, at every check.
        conditions = [
            self._condition("MemoryPressure", memory_pressure, "KubeletHasInsufficientMemory",
                            "KubeletHasSufficientMemory", "kubelet has insufficient memory available"
                            if memory_pressure else "kubelet has sufficient memory available"),
            self._condition("DiskPressure", disk_pressure, "KubeletHasDiskPressure", "KubeletHasNoDiskPressure",
                            "kubelet has disk pressure" if disk_pressure else "kubelet has no disk pressure"),
            self._condition("PIDPressure", pid_pressure, "KubeletHasInsufficientPID", "KubeletHasSufficientPID",
                            "kubelet has insufficient PID available" if pid_pressure
                            else "kubelet has sufficient PID available"),
            self._condition("Ready", not self.runtime_ok, "KubeletNotReady", "KubeletReady",
                            "kubelet is posting ready status" if self.runtime_ok else "container runtime is down"),
        ]
        uname = os.uname()
        return {
            "capacity": capacity, "allocatable": allocatable, "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.config.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": c.kubelet_port}},
            "nodeInfo": {
                "machineID": _machine_id(), "systemUUID": _machine_id(), "bootID": _boot_id(),
                "kernelVersion": uname.release, "osImage": _os_image(),
                "containerRuntimeVersion": await self._runtime_version(), "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": node_arch(),
            },
            "images": await self._images(),
        }

    async def register(self) -> None:
        """Create the Node, or adopt it (labels merged) if it exists; retries until the API answers."""
        delay = 0.5
        while True:
            try:
                status = await self.build_status()
                try:
                    node = await self._api.get(NODES, "", self.config.node_name)
                    node["metadata"].setdefault("labels", {}).update(self._labels())
                    node = await self._api.update(NODES, node)
                except errors.NotFound:
                    body = {"apiVersion": "v1", "kind": "Node",
                            "metadata": {"name": self.config.node_name, "labels": self._labels()},
                            "spec": {"podCIDR": self.config.podman.pod_cidr, "podCIDRs": [self.config.podman.pod_cidr]}}
                    node = await self._api.create(NODES, body)
                await self._write_status(node, status)
                self.registered.set()
                logger.info("registered node %s (%s)", self.config.node_name, self.node_ip)
                return
            except errors.StatusError as exc:
                logger.warning("node registration waiting: %s", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _write_status(self, node: Obj, status: Obj) -> None:
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.config.node_name},
                "spec": node.get("spec") or {}, "status": status}
        await self._api.update_status(NODES, body)
        self._written = status
        self._written_at = asyncio.get_running_loop().time()

    async def status_loop(self) -> None:
        await self.registered.wait()
        while True:
            await wait_event(self._reconnected, self.config.node_status_interval)
            self._reconnected.clear()
            try:
                status = await self.build_status()
                if any(c["type"] == "DiskPressure" and c["status"] == "True" for c in status["conditions"]):
                    await self._on_disk_pressure()
                stale = asyncio.get_running_loop().time() - self._written_at > self.config.node_status_report_interval
                reconnections = self._reconnections
                if status != self._written or stale or reconnections != self._reported_reconnections:
                    node = await self._api.get(NODES, "", self.config.node_name)
                    await self._write_status(node, status)
                    self._reported_reconnections = reconnections
            except errors.NotFound:
                logger.warning("node %s was deleted; registering again", self.config.node_name)
                self.registered.clear()
                await self.register()
            except errors.StatusError as exc:
                logger.debug("node status not written: %s", exc.message)

    async def lease_loop(self) -> None:
        """Renew the Lease. A renewal that goes through after one failed or came late (the masters were cut
        off, or this board stalled) has the status loop write the node status at once: the node lifecycle
        controller may have marked the node Unknown meanwhile (over our status), and an unchanged status is
        otherwise written only every report interval, minutes in which the node stays Unknown and tainted
        NoExecute, its pods evicted (and marked not ready again each time the kubelet reports them)."""
        await self.registered.wait()
        loop = asyncio.get_running_loop()
        renewed_at, failed = loop.time(), False
        while True:
            try:
                await self.renew_lease()
            except errors.StatusError as exc:
                failed = True
                logger.debug("lease not renewed: %s", exc.message)
            else:
                now = loop.time()
                if failed or now - renewed_at > 2 * self.config.lease_renew_interval:
                    self._reconnections += 1
                    self._reconnected.set()
                renewed_at, failed = now, False
            await asyncio.sleep(self.config.lease_renew_interval)

    async def renew_lease(self) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.config.node_name, "leaseDurationSeconds": self.config.lease_duration_seconds,
                "renewTime": now}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.config.node_name, "namespace": "kube-node-lease"}, "spec": spec}
        try:
            await self._api.update(LEASES, body)
        except errors.NotFound:
            await self._api.create(LEASES, body)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _machine_id() -> str:
    return _read("/etc/machine-id")


def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id")
