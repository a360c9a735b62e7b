"""``edgek8s`` command line: flags only; the work is done by server/ and client/.

Every flag of ``edgek8s server`` can also come from an ``EDGEK8S_<FLAG>`` environment variable
(``--raft-address`` <- ``EDGEK8S_RAFT_ADDRESS``; ``--peer`` takes a comma-separated list there).
Errors in flags print one line naming the flag and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from edgek8s.cli import images
from edgek8s.cli.joining import add_join_parsers as _add_join_parsers
from edgek8s.config import ApiConfig, ConfigError, ControllersConfig, RaftConfig, ServerConfig, parse_host_port


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"EDGEK8S_{name.upper().replace('-', '_')}", default)


def read_secret(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"--cluster-secret-file: cannot read {path}: {exc.strerror}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"--cluster-secret-file: {path} must hold a hex-encoded secret") from None
    if len(secret) < 16:
        raise ConfigError(f"--cluster-secret-file: {path} holds fewer than 16 bytes")
    return secret


def _apply_config_dir(args: argparse.Namespace) -> None:
    """Fill unset ``server`` flags from the layout in ``--config-dir`` (written by --cluster-init or join)."""
    from edgek8s.pki.layout import Layout

    layout = Layout(Path(args.config_dir))
    if args.cluster_init and not (layout.ca_key.exists() and layout.server_json.exists()):
        # Already initialised (a restart with the same command, as k3s allows): just start.
        from edgek8s.server.cluster_init import cluster_init, host_addresses
        from edgek8s.server.join import write_unit

        addresses = args.advertise_address or host_addresses()
        pin = cluster_init(layout, name=args.name, raft_address=args.raft_address or "127.0.0.1:7946",
                           listen=args.listen, addresses=addresses, hostnames=args.hostname,
                           mdns_interfaces=args.mdns_interface,
                           lifetime=datetime.timedelta(seconds=_cert_lifetime(args)))
        write_unit(layout, Path(args.data_dir or layout.root / "data"))
        print(f"initialised a new cluster in {layout.root}; CA hash {pin}", flush=True)
    settings = layout.read_json(layout.server_json) if layout.server_json.exists() else {}
    args.name = settings.get("name", args.name) if args.name_default else args.name
    args.raft_address = args.raft_address or settings.get("raftAddress")
    args.peer = args.peer or list(settings.get("peers", []))
    args.listen = settings.get("listen", args.listen) if args.listen_default else args.listen
    args.data_dir = args.data_dir or str(layout.root / "data")
    args.cluster_secret_file = args.cluster_secret_file or str(layout.cluster_secret)
    args.tls_cert_file = args.tls_cert_file or str(layout.serving_cert)
    args.tls_private_key_file = args.tls_private_key_file or str(layout.serving_key)
    args.client_ca_file = args.client_ca_file or str(layout.ca_cert)
    args.ca_key_file = args.ca_key_file or (str(layout.ca_key) if layout.ca_key.exists() else None)
    if layout.kubelet_client_cert.exists() and not args.kubelet_client_certificate:
        args.kubelet_client_certificate = str(layout.kubelet_client_cert)
        args.kubelet_client_key = args.kubelet_client_key or str(layout.kubelet_client_key)
    args.join_servers = list(settings.get("joinServers", []))
    args.mdns_interface = args.mdns_interface or list(settings.get("mdnsInterfaces", []))


def build_server_config(args: argparse.Namespace) -> ServerConfig:
    if getattr(args, "config_dir", None):
        _apply_config_dir(args)
    host, port = parse_host_port(args.listen, what="--listen")
    peers = tuple(p for entry in args.peer for p in entry.split(",") if p)
    if not args.data_dir:
        raise ConfigError("--data-dir is required")
    if not args.raft_address:
        raise ConfigError("--raft-address is required")
    parse_host_port(args.raft_address, what="--raft-address")
    for peer in peers:
        parse_host_port(peer, what="--peer")
    if not args.cluster_secret_file:
        raise ConfigError("--cluster-secret-file is required: Raft traffic is always authenticated")
    raft = RaftConfig(
        self_address=args.raft_address,
        peers=peers,
        data_dir=Path(args.data_dir),
        cluster_secret=read_secret(Path(args.cluster_secret_file)),
    )
    tls_files = [args.tls_cert_file, args.tls_private_key_file, args.client_ca_file, args.kubelet_client_certificate,
                 args.kubelet_client_key]
    tls_flags = ("--tls-cert-file", "--tls-private-key-file", "--client-ca-file", "--kubelet-client-certificate",
                 "--kubelet-client-key")
    for flag, value in zip(tls_flags, tls_files, strict=True):
        if value and not Path(value).is_file():
            raise ConfigError(f"{flag}: {value} is not a readable file")
    api = ApiConfig(
        host=host,
        port=port,
        tls_cert_file=Path(args.tls_cert_file) if args.tls_cert_file else None,
        tls_key_file=Path(args.tls_private_key_file) if args.tls_private_key_file else None,
        client_ca_file=Path(args.client_ca_file) if args.client_ca_file else None,
        kubelet_client_cert_file=Path(args.kubelet_client_certificate) if args.kubelet_client_certificate else None,
        kubelet_client_key_file=Path(args.kubelet_client_key) if args.kubelet_client_key else None,
        ca_key_file=Path(args.ca_key_file) if getattr(args, "ca_key_file", None) else None,
        node_cert_lifetime=_cert_lifetime(args),
    )
    controllers = ControllersConfig(
        node_monitor_grace_period=_number(args.node_monitor_grace_period, "--node-monitor-grace-period"),
        default_toleration_seconds=int(_number(args.default_toleration_seconds, "--default-toleration-seconds")),
        event_ttl=_number(args.event_ttl, "--event-ttl"),
    )
    return ServerConfig(name=args.name, raft=raft, api=api, controllers=controllers)


def _cert_lifetime(args: argparse.Namespace) -> float:
    lifetime = _number(args.cert_lifetime, "--cert-lifetime")
    if lifetime < 10:
        raise ConfigError("--cert-lifetime: certificates must live at least 10 seconds")
    return lifetime


def _number(value: str, flag: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{flag}: {value!r} is not a number of seconds") from None


def _add_server_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = sub.add_parser("server", help="run one master (replicated store + API)")
    server.add_argument("--name", default=None)
    server.add_argument("--data-dir", default=_env("data_dir"))
    server.add_argument("--raft-address", default=_env("raft_address"), help="HOST:PORT this master's Raft binds")
    env_peers = _env("peer")
    server.add_argument(
        "--peer", action="append", default=[env_peers] if env_peers else [], help="HOST:PORT of another master"
    )
    server.add_argument("--listen", default=None, help="HOST:PORT of the API (default 127.0.0.1:6443)")
    server.add_argument("--cluster-secret-file", default=_env("cluster_secret_file"))
    server.add_argument("--tls-cert-file", default=_env("tls_cert_file"), help="serving certificate (PEM)")
    server.add_argument("--tls-private-key-file", default=_env("tls_private_key_file"))
    server.add_argument("--client-ca-file", default=_env("client_ca_file"), help="CA that signs client certificates")
    defaults = ControllersConfig()
    server.add_argument("--node-monitor-grace-period", default=_env("node_monitor_grace_period",
                                                                   str(defaults.node_monitor_grace_period)),
                        help="seconds without a node heartbeat before the node is NotReady/Unknown")
    server.add_argument("--default-toleration-seconds", default=_env("default_toleration_seconds",
                                                                    str(defaults.default_toleration_seconds)),
                        help="seconds pods stay on a not-ready/unreachable node unless they tolerate longer")
    server.add_argument("--event-ttl", default=_env("event_ttl", str(defaults.event_ttl)),
                        help="seconds after which Events are deleted")
    server.add_argument("--kubelet-client-certificate", default=_env("kubelet_client_certificate"),
                        help="client certificate the API presents to kubelets (logs, exec, port-forward, top)")
    server.add_argument("--kubelet-client-key", default=_env("kubelet_client_key"))
    server.add_argument("--ca-key-file", default=_env("ca_key_file"), help="CA key: this master signs join requests")
    server.add_argument("--cert-lifetime", default=_env("cert_lifetime", str(ApiConfig().node_cert_lifetime)),
                        help="seconds every certificate this master signs lives (nodes', kubelets', its own); "
                             "holders renew at two thirds of it, in place (default one year)")
    server.add_argument("--config-dir", default=_env("config_dir"),
                        help="read unset flags from this layout (see docs/joining.md), e.g. /etc/edgek8s")
    server.add_argument("--cluster-init", action="store_true",
                        help="create a new cluster's CA, certificates and secret in --config-dir first")
    server.add_argument("--advertise-address", action="append", default=[],
                        help="address this master is reachable at (serving certificate SAN, mDNS); repeatable")
    server.add_argument("--hostname", action="append", default=[], help="extra serving certificate DNS name")
    server.add_argument("--mdns", default=_env("mdns", "on"), choices=("on", "off"),
                        help="advertise this master on mDNS (with --config-dir)")
    server.add_argument("--mdns-interface", action="append", default=[], help="interface address for mDNS")
    server.add_argument("--log-level", default=_env("log_level", "INFO"))


def process_memory_settings() -> None:
    """A master's or agent's process-wide memory settings (``_util.memory``); first thing, before its imports
    and threads."""
    from edgek8s._util import memory

    memory.limit_malloc_arenas()  # before any thread starts
    memory.limit_tls_read_buffers()  # one buffer per kubectl, agent watch and kubelet connection
    # frozenlist's compiled FrozenList (aiohttp's signal and middleware lists, none on a write's path but a
    # ~50 ns truth test per response) is C++: it maps libstdc++ into the process (~1 MB of RSS).
    memory.keep_out("frozenlist._frozenlist")
    memory.defer_mime_type_files()  # before aiohttp's import


def _run_server(args: argparse.Namespace) -> int:
    from edgek8s._util import memory

    process_memory_settings()
    with memory.without_default_ca_bundle():  # aiohttp's default contexts: replaced below anyway
        from edgek8s.client.rest import drop_public_ca_defaults
        from edgek8s.server.control_plane import JoinSettings, MdnsSettings, run_master

    drop_public_ca_defaults()  # a master trusts only its cluster CA
    memory.settle_garbage_collector(memory.MASTER_YOUNG_THRESHOLD)  # after the imports: they are what it freezes

    if args.cluster_init and not args.config_dir:
        args.config_dir = "/etc/edgek8s"
    config = build_server_config(args)
    logging.basicConfig(
        level=args.log_level.upper(), format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s"
    )
    mdns = None
    if args.config_dir and args.mdns == "on":
        addresses = args.advertise_address or ([config.api.host] if config.api.host not in ("0.0.0.0", "") else [])
        if not addresses:
            from edgek8s.server.cluster_init import host_addresses

            addresses = host_addresses()
        mdns = MdnsSettings(addresses=tuple(addresses), interfaces=tuple(args.mdns_interface))
    from edgek8s.pki.layout import Layout

    layout = Layout(Path(args.config_dir)) if args.config_dir else None
    join = None
    if getattr(args, "join_servers", None) and layout is not None:
        from edgek8s.pki.certs import client_tls_context

        join = JoinSettings(servers=tuple(args.join_servers),
                            tls=client_tls_context(layout.ca_cert, layout.admin_cert, layout.admin_key))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_master(config, stop, mdns=mdns, join=join, layout=layout)

    asyncio.run(main())
    return 0


def _add_agent_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser("agent", help="run a worker: the kubelet over Podman")
    agent.add_argument("--name", default=_env("name", os.uname().nodename), help="node name")
    agent.add_argument("--data-dir", default=_env("data_dir", "/var/lib/edgek8s/agent"))
    env_servers = _env("server")
    agent.add_argument("--server", action="append", default=[env_servers] if env_servers else [],
                       help="API URL of a master (repeat, or comma-separated, for every master)")
    agent.add_argument("--ca-file", default=_env("ca_file"), help="cluster CA (PEM)")
    agent.add_argument("--cert-file", default=_env("cert_file"), help="node client certificate (CN=system:node:NAME)")
    agent.add_argument("--key-file", default=_env("key_file"))
    agent.add_argument("--node-ip", default=_env("node_ip", ""), help="address to report (default: detected)")
    agent.add_argument("--kubelet-port", type=int, default=_env("kubelet_port", "10250"))
    agent.add_argument("--tls-cert-file", default=_env("tls_cert_file"),
                       help="serving certificate of the kubelet endpoint (logs, exec, port-forward, top), signed by "
                            "the cluster CA; without it kubectl logs/exec/top cannot reach this node")
    agent.add_argument("--tls-private-key-file", default=_env("tls_private_key_file"))
    agent.add_argument("--pod-cidr", default=_env("pod_cidr", "10.88.0.0/16"))
    agent.add_argument("--podman-socket", default=_env("podman_socket"), help="use this running Podman service")
    agent.add_argument("--oci-runtime", default=_env("oci_runtime", "auto"), help="auto, runc or crun")
    agent.add_argument("--cgroup-manager", default=_env("cgroup_manager", "auto"), help="auto, systemd or cgroupfs")
    agent.add_argument("--ulimit", action="append", default=None,
                       help="default container ulimit, e.g. nofile=20000:20000 (repeat)")
    agent.add_argument("--label", action="append", default=[], help="node label KEY=VALUE (repeat)")
    agent.add_argument("--max-pods", type=int, default=110)
    agent.add_argument("--reserved-cpu", default="100m", help="CPU kept from pods (quantity)")
    agent.add_argument("--reserved-memory", default="256Mi", help="memory kept from pods (quantity)")
    agent.add_argument("--backoff-initial", type=float, default=10.0, help="first CrashLoopBackOff delay (s)")
    agent.add_argument("--backoff-max", type=float, default=300.0, help="longest CrashLoopBackOff delay (s)")
    agent.add_argument("--relist-period", type=float, default=10.0,
                       help="seconds between full relists of Podman (container deaths are seen at once)")
    agent.add_argument("--node-lease-duration-seconds", type=int,
                       default=_env("node_lease_duration_seconds", "40"),
                       help="the node Lease's duration; renewed every quarter of it (upstream's kubelet "
                            "nodeLeaseDurationSeconds). Each renewal is a Raft entry fsynced on every master: "
                            "80 halves each worker's idle SD-card writes on the masters")
    agent.add_argument("--log-level", default=_env("log_level", "INFO"))


def build_agent_config(args: argparse.Namespace) -> Any:
    from edgek8s.config import AgentConfig, PodmanConfig
    from edgek8s.model.quantity import milli_value
    from edgek8s.model.quantity import value as quantity_value

    masters = tuple(s.strip() for entry in args.server for s in entry.split(",") if s.strip())
    labels = []
    for label in args.label:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label: expected KEY=VALUE, got {label!r}")
        labels.append((key, value))
    from edgek8s.model.nodelabels import forbidden_labels

    if bad := forbidden_labels(key for key, _ in labels):  # the API would refuse the registration (403)
        raise ConfigError(f"--label: a node may not set {', '.join(bad)} on itself (NodeRestriction); "
                          "label it with an admin's kubectl label instead")
    try:
        reserved_cpu, reserved_memory = milli_value(args.reserved_cpu), quantity_value(args.reserved_memory)
    except ValueError as exc:
        raise ConfigError(f"--reserved-cpu/--reserved-memory: {exc}") from None
    podman_kwargs: dict[str, Any] = {}
    if args.ulimit is not None:
        podman_kwargs["ulimits"] = tuple(args.ulimit)
    podman = PodmanConfig(
        socket=Path(args.podman_socket) if args.podman_socket else None, oci_runtime=args.oci_runtime,
        cgroup_manager=args.cgroup_manager, pod_cidr=args.pod_cidr, **podman_kwargs,
    )
    files = {"--ca-file": args.ca_file, "--cert-file": args.cert_file, "--key-file": args.key_file}
    for flag, value in files.items():
        if value and not Path(value).is_file():
            raise ConfigError(f"{flag}: {value} is not a readable file")
    return AgentConfig(
        node_name=args.name, data_dir=Path(args.data_dir), masters=masters,
        ca_file=Path(args.ca_file) if args.ca_file else None,
        cert_file=Path(args.cert_file) if args.cert_file else None,
        key_file=Path(args.key_file) if args.key_file else None, node_ip=args.node_ip, kubelet_port=args.kubelet_port,
        podman=podman, labels=tuple(labels), max_pods=args.max_pods, reserved_cpu_millis=reserved_cpu,
        reserved_memory_bytes=reserved_memory, backoff_initial=args.backoff_initial, backoff_max=args.backoff_max,
        relist_period=args.relist_period, lease_duration_seconds=args.node_lease_duration_seconds,
        lease_renew_interval=args.node_lease_duration_seconds / 4,  # upstream's NodeLeaseRenewIntervalFraction
    )


def _agent_servers(args: argparse.Namespace) -> list[Any]:
    if not args.tls_cert_file and not args.tls_private_key_file:
        logging.getLogger("edgek8s.agent").warning(
            "no --tls-cert-file: the kubelet endpoint is off, so kubectl logs, exec, port-forward and top "
            "cannot reach this node")
        return []
    if not (args.tls_cert_file and args.tls_private_key_file):
        raise ConfigError("--tls-cert-file and --tls-private-key-file go together")
    from edgek8s.server.kubelet_endpoint import kubelet_endpoint

    return [kubelet_endpoint(cert_file=Path(args.tls_cert_file), key_file=Path(args.tls_private_key_file))]


def _run_agent(args: argparse.Namespace) -> int:
    from edgek8s._util import memory

    process_memory_settings()
    # The podman bindings import rich (when installed) only to draw image-pull progress bars, and requests
    # imports a charset detector only to guess the encoding of an undeclared text body (utf-8 without
    # one): the agent needs neither, and they cost it ~5 MB of RSS.
    memory.keep_out("rich", "charset_normalizer", "chardet",
                    silence="Unable to find acceptable character detection dependency")
    with memory.without_default_ca_bundle():  # aiohttp's default contexts: replaced below anyway
        from edgek8s.client.rest import drop_public_ca_defaults
        from edgek8s.server.agent import run_agent

    config = build_agent_config(args)
    servers = _agent_servers(args)
    drop_public_ca_defaults()  # an agent trusts only its cluster CA (Podman pulls images, not the agent)
    memory.settle_garbage_collector()  # after the imports: they are what it freezes
    logging.basicConfig(
        level=args.log_level.upper(), format=f"%(asctime)s {config.node_name} %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(config, stop, server_factories=servers)

    asyncio.run(main())
    return 0


def _add_endpoint_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="admin kubeconfig (TLS)")
    parser.add_argument("--server", default=_env("server"), help="API URL (plain HTTP masters; overrides --kubeconfig)")


def _endpoint(args: argparse.Namespace) -> tuple[str, Any]:
    if args.server:
        return str(args.server), None
    if not args.kubeconfig:
        raise ConfigError("give --kubeconfig (or KUBECONFIG) or --server")
    from edgek8s.client.kubeconfig import load_kubeconfig
    from edgek8s.model.errors import StatusError

    try:
        endpoint = load_kubeconfig(Path(args.kubeconfig))
    except StatusError as exc:
        raise ConfigError(exc.message) from None
    return endpoint.server, endpoint.ssl_context


def _add_admin_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    secret = sub.add_parser("secret", help="cluster secret files")
    secret_sub = secret.add_subparsers(dest="secret_command", required=True)
    generate = secret_sub.add_parser("generate", help="write a new random cluster secret (mode 0600)")
    generate.add_argument("file")

    status = sub.add_parser("status", help="members, leader, term, applied index and health of every master")
    _add_endpoint_flags(status)

    snapshot = sub.add_parser("snapshot", help="save or restore the whole store")
    snap_sub = snapshot.add_subparsers(dest="snapshot_command", required=True)
    save = snap_sub.add_parser("save", help="write a consistent snapshot of every object to FILE")
    save.add_argument("file")
    _add_endpoint_flags(save)
    restore = snap_sub.add_parser("restore", help="seed a new, empty data dir from FILE (run on every master)")
    restore.add_argument("file")
    restore.add_argument("--data-dir", required=True)
    restore.add_argument("--raft-address", required=True)
    restore.add_argument("--peer", action="append", default=[])

    up = sub.add_parser("up", help="start a local cluster on this machine: 3 masters, a Podman worker, a sample app")
    up.add_argument("--state-dir", default=_env("state_dir", str(Path.home() / ".edgek8s" / "local")))
    up.add_argument("--masters", type=int, default=3)
    up.add_argument("--workers", type=int, default=1, help="worker agents running pods through Podman (0: none)")
    kubeconfig = sub.add_parser("kubeconfig", help="print the admin kubeconfig of the local cluster")
    kubeconfig.add_argument("--state-dir", default=_env("state_dir", str(Path.home() / ".edgek8s" / "local")))
    kubeconfig.add_argument("--config-dir", default=None, help="print this master's admin kubeconfig instead")
    _add_join_parsers(sub)
    down = sub.add_parser("down", help="stop the local cluster and remove everything it made")
    down.add_argument("--state-dir", default=_env("state_dir", str(Path.home() / ".edgek8s" / "local")))


def _run_admin(args: argparse.Namespace) -> int:
    if args.command == "secret":
        from edgek8s.server.secrets import generate_secret_file

        generate_secret_file(Path(args.file))
        print(f"wrote a new cluster secret to {args.file}")
        return 0
    if args.command == "status":
        from edgek8s.server.admin import print_status

        return asyncio.run(print_status(*_endpoint(args)))
    if args.command == "snapshot" and args.snapshot_command == "save":
        from edgek8s.server.admin import save_snapshot

        server, tls = _endpoint(args)
        return asyncio.run(save_snapshot(server, Path(args.file), tls))
    if args.command == "snapshot" and args.snapshot_command == "restore":
        from edgek8s.server.restore import restore_snapshot

        peers = tuple(p for entry in args.peer for p in entry.split(",") if p)
        restore_snapshot(Path(args.file), data_dir=Path(args.data_dir), self_address=args.raft_address, peers=peers)
        print(f"restored {args.file} into {args.data_dir}")
        return 0
    if args.command == "up":
        from edgek8s.server.local_cluster import up

        return up(Path(args.state_dir), masters=args.masters, workers=args.workers)
    if args.command in ("token", "join", "certs"):
        from edgek8s.cli.joining import run_join_command

        return run_join_command(args)
    if args.command == "kubeconfig":
        from edgek8s.server.local_cluster import kubeconfig_path

        path = kubeconfig_path(Path(args.state_dir))
        if args.config_dir:
            from edgek8s.pki.layout import Layout

            path = Layout(Path(args.config_dir)).admin_kubeconfig
        if not path.exists():
            raise ConfigError(f"no local cluster in {args.state_dir}; run `edgek8s up` first")
        print(path.read_text(), end="")
        return 0
    if args.command == "down":
        from edgek8s.server.local_cluster import down

        return down(Path(args.state_dir))
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgek8s", description="Kubernetes for edge hosts")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_server_parser(sub)
    _add_agent_parser(sub)
    _add_admin_parsers(sub)
    images.add_parser(sub, _add_endpoint_flags)
    args = parser.parse_args(argv)
    if args.command == "server":
        args.name_default, args.listen_default = args.name is None, args.listen is None
        args.name = args.name or _env("name", os.uname().nodename)
        args.listen = args.listen or _env("listen", "127.0.0.1:6443")
    try:
        if args.command == "server":
            return _run_server(args)
        if args.command == "images":
            return images.run(args, _endpoint)
        if args.command == "agent":
            return _run_agent(args)
        return _run_admin(args)
    except ConfigError as exc:
        print(f"edgek8s {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
