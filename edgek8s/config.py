"""Settings of each component: frozen dataclasses, validated once when built.

Precedence where a component reads more than one source: command-line flags, then ``EDGEK8S_*``
environment variables, then defaults. No paths or addresses are hard-coded beyond defaults, so a
component can run inside a network namespace with its own data dir and addresses.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path

JOURNAL_FILE = "raft.journal"
SNAPSHOT_FILE = "raft.snapshot"


class ConfigError(ValueError):
    """A setting is invalid; the message names it."""


def parse_host_port(value: str, *, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int | str) -> str:
    """``host:port``, with an IPv6 address in brackets (as URLs need it)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """One master's Raft membership, storage and timing.

    Timing defaults suit a LAN of Raspberry Pis: a leader whose process dies closes its links and is
    replaced within ~0.1 s (followers ask for a pre-vote at once); one that goes silent (power cut,
    partition) after ``election_timeout_min..max`` plus one pre-vote and one vote round trip. The timeouts
    are long enough that a master starved of CPU for a few hundred milliseconds (a big LIST rendered on a
    busy Pi) is not deposed. A leader that hears no majority for ``leader_fallback_timeout`` steps down
    (check-quorum, below ``election_timeout_min``: before the others can elect its successor).
    """

    self_address: str
    peers: tuple[str, ...]
    data_dir: Path
    cluster_secret: bytes
    heartbeat_period: float = 0.05
    election_timeout_min: float = 0.6
    election_timeout_max: float = 1.2
    leader_fallback_timeout: float = 0.4  # check-quorum: below election_timeout_min, see docs/raft.md
    connection_timeout: float = 2.0
    connection_retry: float = 0.3
    tick_period: float = 0.02
    compaction_min_entries: int = 20_000
    compaction_min_seconds: float = 600.0
    propose_timeout: float = 10.0

    def __post_init__(self) -> None:
        parse_host_port(self.self_address, what="raft address")
        for peer in self.peers:
            parse_host_port(peer, what="peer address")
        if self.self_address in self.peers:
            raise ConfigError("the peer list must not contain this master's own raft address")
        if len(self.cluster_secret) < 16:
            raise ConfigError("the cluster secret must be at least 16 bytes")
        if not self.election_timeout_min > 3 * self.heartbeat_period:
            raise ConfigError("election_timeout_min must exceed 3 heartbeat periods")
        if not 2 * self.heartbeat_period < self.leader_fallback_timeout < self.election_timeout_min:
            # A cut-off leader must step down before the others can elect its successor (docs/raft.md #17).
            raise ConfigError("leader_fallback_timeout must be between 2 heartbeat periods and election_timeout_min")
        if not self.election_timeout_max > self.election_timeout_min:
            raise ConfigError("election_timeout_max must exceed election_timeout_min")
        if self.connection_timeout < self.election_timeout_max:
            raise ConfigError("connection_timeout must be at least election_timeout_max")

    @property
    def journal_path(self) -> Path:
        return self.data_dir / JOURNAL_FILE

    @property
    def snapshot_path(self) -> Path:
        return self.data_dir / SNAPSHOT_FILE


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """Bounds on what the store keeps in memory for watches."""

    watch_history: int = 10_000
    watcher_queue: int = 1_000
    dedup_window: int = 4_096


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    """The API listener. With the three TLS files set it serves HTTPS and authenticates every request by
    client certificate; without them it serves plain HTTP with no authentication (tests, benchmarks)."""

    host: str = "127.0.0.1"
    port: int = 6443
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    ca_key_file: Path | None = None  # set on masters that sign join and renewal requests
    node_cert_lifetime: float = 365 * 86400.0  # seconds; clients renew at two thirds of it
    max_body_bytes: int = 3 * 1024 * 1024
    request_timeout: float = 30.0
    default_watch_timeout: float = 1800.0
    bookmark_interval: float = 60.0
    # The API servers' client certificate for kubelets (logs, exec, port-forward, metrics); kubelet serving
    # certificates are verified against client_ca_file (the cluster CA).
    kubelet_client_cert_file: Path | None = None
    kubelet_client_key_file: Path | None = None

    def __post_init__(self) -> None:
        tls = (self.tls_cert_file, self.tls_key_file, self.client_ca_file)
        if any(tls) and not all(tls):
            raise ConfigError("TLS needs all of --tls-cert-file, --tls-private-key-file and --client-ca-file")
        if (self.kubelet_client_cert_file is None) != (self.kubelet_client_key_file is None):
            raise ConfigError("--kubelet-client-certificate and --kubelet-client-key go together")

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllersConfig:
    """Timing of the leader-only controllers, chosen for Pis on one LAN (upstream's in comments).

    A node is Unknown after ``node_monitor_grace_period`` without a Lease renewal or status heartbeat
    (upstream 40 s; the agent renews every 10 s as upstream's kubelet, so 30 s is three missed
    renewals); its pods are evicted ``default_toleration_seconds`` later unless they tolerate longer
    (upstream 300 s; 60 s lets a rebooting Pi come back without reshuffling, yet moves the work of a
    dead one in ~90 s instead of ~6 min). See ``controllers/nodelifecycle.py`` for the reasoning.
    """

    node_monitor_grace_period: float = 30.0
    default_toleration_seconds: int = 60
    event_ttl: float = 3600.0  # upstream --event-ttl 1h
    job_backoff_base: float = 10.0  # upstream: 10 s doubling per failure up to 6 min
    job_backoff_max: float = 360.0

    def __post_init__(self) -> None:
        if self.node_monitor_grace_period <= 0:
            raise ConfigError("--node-monitor-grace-period must be positive")
        if self.default_toleration_seconds < 0:
            raise ConfigError("--default-toleration-seconds must not be negative")
        if self.event_ttl <= 0:
            raise ConfigError("--event-ttl must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    name: str
    raft: RaftConfig
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    api: ApiConfig = dataclasses.field(default_factory=ApiConfig)
    controllers: ControllersConfig = dataclasses.field(default_factory=ControllersConfig)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a master needs a name")

    @property
    def api_url(self) -> str:
        scheme = "https" if self.api.tls else "http"
        return f"{scheme}://{join_host_port(self.api.host, self.api.port)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodmanConfig:
    """How the agent runs Podman. ``auto`` settings are resolved from the host when the agent starts:
    runc where cgroups are v1 or hybrid (crun refuses them), crun's default otherwise; the systemd cgroup
    manager where systemd is PID 1's init, cgroupfs elsewhere. ``ulimits`` are written explicitly because
    Podman's defaults need CAP_SYS_RESOURCE, which some hosts lack."""

    binary: str = "podman"
    socket: Path | None = None  # an already running `podman system service`; None: the agent starts one
    oci_runtime: str = "auto"
    cgroup_manager: str = "auto"
    ulimits: tuple[str, ...] = ("nofile=20000:20000", "nproc=32768:32768")
    storage_driver: str = "overlay"
    run_dir: Path | None = None  # tmpfs for Podman's run state; default /run/edgek8s/<hash of the data dir>
    network: str = "edgek8s"
    pod_cidr: str = "10.88.0.0/16"

    def __post_init__(self) -> None:
        if self.oci_runtime not in ("auto", "runc", "crun"):
            raise ConfigError(f"--oci-runtime must be auto, runc or crun, not {self.oci_runtime!r}")
        if self.cgroup_manager not in ("auto", "systemd", "cgroupfs"):
            raise ConfigError(f"--cgroup-manager must be auto, systemd or cgroupfs, not {self.cgroup_manager!r}")
        try:
            network = ipaddress.ip_network(self.pod_cidr)
        except ValueError as exc:
            raise ConfigError(f"--pod-cidr: {exc}") from None
        if network.prefixlen > 28:
            raise ConfigError("--pod-cidr must hold at least 16 addresses")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """One worker's kubelet. Timing defaults follow upstream where it matters to other components
    (40 s lease, so the node lifecycle controller's grace matches) and are lighter where it only costs
    the Pi (status reports, relists)."""

    node_name: str
    data_dir: Path
    masters: tuple[str, ...]  # API URLs, tried in turn
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    node_ip: str = ""  # empty: the address of the interface that routes to the first master
    kubelet_port: int = 10250  # the HTTPS endpoint for logs/exec (advertised in Node.status)
    podman: PodmanConfig = dataclasses.field(default_factory=PodmanConfig)
    labels: tuple[tuple[str, str], ...] = ()
    max_pods: int = 110
    reserved_cpu_millis: int = 100
    reserved_memory_bytes: int = 256 * 1024 * 1024
    reserved_storage_bytes: int = 1024 * 1024 * 1024
    lease_duration_seconds: int = 40
    lease_renew_interval: float = 10.0
    node_status_interval: float = 10.0  # measure conditions this often
    node_status_report_interval: float = 300.0  # write an unchanged Node status this often
    relist_period: float = 10.0  # a safety net: container starts and deaths are seen at once (runtime events)
    resync_period: float = 60.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    memory_pressure_bytes: int = 100 * 1024 * 1024  # memory.available below this: MemoryPressure
    disk_pressure_percent: float = 10.0  # free space of the data dir's filesystem below this: DiskPressure
    pid_pressure_percent: float = 10.0  # free PIDs below this: PIDPressure
    image_gc_high_percent: float = 85.0
    image_gc_low_percent: float = 80.0
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ConfigError("the agent needs a node name")
        if not self.masters:
            raise ConfigError("the agent needs at least one master URL (--server)")
        for url in self.masters:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"--server: {url!r} is not an http(s) URL")
        tls = (self.ca_file, self.cert_file, self.key_file)
        if any(tls) and not all(tls):
            raise ConfigError("TLS needs all of --ca-file, --cert-file and --key-file")
        if self.lease_duration_seconds <= 0:
            raise ConfigError("--node-lease-duration-seconds must be positive")
        if not 0 < self.lease_renew_interval < self.lease_duration_seconds:
            raise ConfigError("the lease renew interval must be shorter than the lease duration")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ConfigError("back-off: 0 < initial <= max")
        if not self.image_gc_low_percent < self.image_gc_high_percent:
            raise ConfigError("image GC: low threshold must be below the high threshold")


KUBELET_CLIENT_NAME = "kube-apiserver-kubelet-client"  # CN of the API servers' certificate for kubelets


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeletServerConfig:
    """The kubelet's HTTPS endpoint (logs, exec, port-forward, stats, image loading). Always mTLS: only
    clients whose certificate is signed by ``client_ca_file`` and whose CN is in ``allowed_clients`` (the
    API servers) get in."""

    host: str = "0.0.0.0"
    port: int = 10250
    tls_cert_file: Path
    tls_key_file: Path
    client_ca_file: Path
    allowed_clients: tuple[str, ...] = (KUBELET_CLIENT_NAME,)
    podman_socket: Path = Path("/run/podman/podman.sock")

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"kubelet port: {self.port} is not a TCP port")
        if not self.allowed_clients:
            raise ConfigError("the kubelet endpoint needs at least one allowed client name")
