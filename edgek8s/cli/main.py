"""``edgek8s`` command line: flags only; the work is done by server/ and client/.

Every flag of ``edgek8s server`` can also come from an ``EDGEK8S_<FLAG>`` environment variable
(``--raft-address`` <- ``EDGEK8S_RAFT_ADDRESS``; ``--peer`` takes a comma-separated list there).
Errors in flags print one line naming the flag and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from edgek8s.cli.joining import add_join_parsers as _add_join_parsers
from edgek8s.config import ApiConfig, ConfigError, RaftConfig, ServerConfig, parse_host_port


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
                           mdns_interfaces=args.mdns_interface)
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
    tls_files = [args.tls_cert_file, args.tls_private_key_file, args.client_ca_file]
    for flag, value in zip(("--tls-cert-file", "--tls-private-key-file", "--client-ca-file"), tls_files, strict=True):
        if value and not Path(value).is_file():
            raise ConfigError(f"{flag}: {value} is not a readable file")
    api = ApiConfig(
        host=host,
        port=port,
        tls_cert_file=Path(args.tls_cert_file) if args.tls_cert_file else None,
        tls_key_file=Path(args.tls_private_key_file) if args.tls_private_key_file else None,
        client_ca_file=Path(args.client_ca_file) if args.client_ca_file else None,
        ca_key_file=Path(args.ca_key_file) if getattr(args, "ca_key_file", None) else None,
    )
    return ServerConfig(name=args.name, raft=raft, api=api)


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
    server.add_argument("--ca-key-file", default=_env("ca_key_file"), help="CA key: this master signs join requests")
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


def _run_server(args: argparse.Namespace) -> int:
    from edgek8s._util.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts
    from edgek8s.server.control_plane import JoinSettings, MdnsSettings, run_master

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
    join = None
    if getattr(args, "join_servers", None):
        from edgek8s.pki.certs import client_tls_context
        from edgek8s.pki.layout import Layout

        layout = Layout(Path(args.config_dir))
        join = JoinSettings(servers=tuple(args.join_servers),
                            tls=client_tls_context(layout.ca_cert, layout.admin_cert, layout.admin_key))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_master(config, stop, mdns=mdns, join=join)

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

    up = sub.add_parser("up", help="start a local 3-master cluster on this machine")
    up.add_argument("--state-dir", default=_env("state_dir", str(Path.home() / ".edgek8s" / "local")))
    up.add_argument("--masters", type=int, default=3)
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

        return up(Path(args.state_dir), masters=args.masters)
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
    _add_admin_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "server":
        args.name_default, args.listen_default = args.name is None, args.listen is None
        args.name = args.name or _env("name", os.uname().nodename)
        args.listen = args.listen or _env("listen", "127.0.0.1:6443")
    try:
        if args.command == "server":
            return _run_server(args)
        return _run_admin(args)
    except ConfigError as exc:
        print(f"edgek8s {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
