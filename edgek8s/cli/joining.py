"""``edgek8s token``, ``edgek8s join`` and ``edgek8s certs check``: flags only; work in server/."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from edgek8s.config import ConfigError, parse_host_port
from edgek8s.pki.layout import Layout

DEFAULT_CONFIG_DIR = "/etc/edgek8s"


def _config_dir_default() -> str:
    return os.environ.get("EDGEK8S_CONFIG_DIR", DEFAULT_CONFIG_DIR)


def add_join_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="join tokens: create, list, delete")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="print a new join token")
    create.add_argument("--ttl", default="24h", help="lifetime, e.g. 30m, 24h, 7d (default 24h)")
    create.add_argument("--role", default="worker", choices=("worker", "master"))
    create.add_argument("--description", default="")
    token_sub.add_parser("list", help="token ids, roles and expiry")
    delete = token_sub.add_parser("delete", help="delete a token (by id or the whole token)")
    delete.add_argument("token_id")
    for parser in token_sub.choices.values():
        parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                            help="admin kubeconfig (default: <config-dir>/admin.kubeconfig)")
        parser.add_argument("--config-dir", default=_config_dir_default())

    join = sub.add_parser("join", help="join this host to a cluster with a token")
    join.add_argument("--token", default=os.environ.get("EDGEK8S_TOKEN"), required=not os.environ.get("EDGEK8S_TOKEN"))
    join.add_argument("--server", action="append", default=[], help="API URL of a master (instead of mDNS)")
    join.add_argument("--control-plane", action="store_true", help="join as a master")
    join.add_argument("--name", default=socket.gethostname().lower())
    join.add_argument("--config-dir", default=_config_dir_default(), help="credentials and settings (0700)")
    join.add_argument("--data-dir", default=os.environ.get("EDGEK8S_DATA_DIR", "/var/lib/edgek8s"),
                      help="state of the agent or master started after joining")
    join.add_argument("--raft-address", default=None, help="HOST:PORT this master's Raft binds (--control-plane)")
    join.add_argument("--listen", default="0.0.0.0:6443", help="HOST:PORT of this master's API (--control-plane)")
    join.add_argument("--advertise-address", action="append", default=[], help="this host's address; repeatable")
    join.add_argument("--hostname", action="append", default=[])
    join.add_argument("--mdns-interface", action="append", default=[], help="interface address to browse on")
    join.add_argument("--browse-timeout", type=float, default=3.0)
    join.add_argument("--foreground", action="store_true", help="run the agent (or master) here after joining")

    certs = sub.add_parser("certs", help="certificates of this host")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    check = certs_sub.add_parser("check", help="list every certificate in the config dir with its expiry")
    check.add_argument("--config-dir", default=_config_dir_default())


def _admin_endpoint(args: argparse.Namespace) -> tuple[str, object, bytes]:
    from edgek8s.client.kubeconfig import load_kubeconfig
    from edgek8s.model.errors import StatusError
    from edgek8s.server.tokens_admin import kubeconfig_ca

    path = Path(args.kubeconfig or Path(args.config_dir) / "admin.kubeconfig")
    try:
        endpoint = load_kubeconfig(path)
        return endpoint.server, endpoint.ssl_context, kubeconfig_ca(path)
    except (StatusError, OSError, KeyError) as exc:
        raise ConfigError(f"cannot use the admin kubeconfig {path}: {exc}") from None


def _run_token(args: argparse.Namespace) -> int:
    from edgek8s.server import tokens_admin

    server, tls, ca_pem = _admin_endpoint(args)
    if args.token_command == "create":
        ttl = tokens_admin.parse_duration(args.ttl)
        token = asyncio.run(tokens_admin.create_token(server, tls, ca_pem, ttl=ttl, role=args.role,  # type: ignore[arg-type]
                                                      description=args.description))
        print(token)
        return 0
    if args.token_command == "list":
        return asyncio.run(tokens_admin.list_tokens(server, tls))  # type: ignore[arg-type]
    return asyncio.run(tokens_admin.delete_token(server, tls, args.token_id))  # type: ignore[arg-type]


def _run_join(args: argparse.Namespace) -> int:
    from edgek8s.pki.tokens import parse_token
    from edgek8s.server.join import JoinError, JoinRequest, join

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        token = parse_token(args.token)
    except ValueError as exc:
        raise ConfigError(f"--token: {exc}") from None
    if args.control_plane and not args.raft_address:
        raise ConfigError("--control-plane needs --raft-address HOST:PORT")
    if args.raft_address:
        parse_host_port(args.raft_address, what="--raft-address")
    parse_host_port(args.listen, what="--listen")
    addresses = list(args.advertise_address)
    if not addresses:  # masters' serving and every kubelet's serving certificate name them
        from edgek8s.server.cluster_init import host_addresses

        addresses = host_addresses() or ["127.0.0.1"]
    request = JoinRequest(
        token=token, name=args.name, layout=Layout(Path(args.config_dir)), data_dir=Path(args.data_dir),
        servers=tuple(args.server),
        control_plane=args.control_plane, raft_address=args.raft_address or "", listen=args.listen,
        addresses=tuple(addresses), hostnames=tuple(args.hostname), browse_timeout=args.browse_timeout,
        mdns_interfaces=tuple(args.mdns_interface))
    try:
        asyncio.run(join(request))
    except JoinError as exc:
        print(f"edgek8s join: {exc}", file=sys.stderr)
        return 1
    print(f"joined as {args.name}; credentials in {args.config_dir}", flush=True)
    return _start(request.layout, Path(args.data_dir), foreground=args.foreground)


def _start(layout: Layout, data_dir: Path, *, foreground: bool) -> int:
    from edgek8s.server.join import service_argv

    argv = service_argv(layout, data_dir)
    if foreground:
        os.execv(sys.executable, argv)
    unit = layout.root / f"edgek8s-{argv[3]}.service"
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl") and os.geteuid() == 0:
        target = Path("/etc/systemd/system") / unit.name
        shutil.copyfile(unit, target)
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "enable", "--now", unit.name], check=True)
        print(f"started {unit.name}")
    else:
        print(f"systemd is not running here: start it with `{' '.join(argv)}` (or --foreground); unit: {unit}")
    return 0


def _run_certs(args: argparse.Namespace) -> int:
    import datetime

    from edgek8s.pki.certs import cert_info

    layout = Layout(Path(args.config_dir))
    now = datetime.datetime.now(datetime.UTC)
    found = 0
    print(f"{'CERTIFICATE':<12} {'SUBJECT':<44} {'EXPIRES':<22} {'RESIDUAL':<10} RENEWS")
    for label, path in (("ca", layout.ca_cert), ("node", layout.node_cert), ("serving", layout.serving_cert),
                        ("admin", layout.admin_cert), ("kubelet-cli", layout.kubelet_client_cert),
                        ("kubelet-srv", layout.kubelet_serving_cert)):
        if not path.exists():
            continue
        found += 1
        info = cert_info(path.read_bytes())
        left = info.not_after - now
        seconds = int(left.total_seconds())
        residual = f"{left.days}d" if left.days >= 1 else f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds}s"
        renews = "-" if label == "ca" else info.renew_at().strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{label:<12} {info.subject[:44]:<44} {info.not_after.strftime('%Y-%m-%dT%H:%M:%SZ'):<22} "
              f"{residual if left.total_seconds() > 0 else 'EXPIRED':<10} {renews}")
    if not found:
        raise ConfigError(f"no certificates in {layout.root}")
    return 0


def run_join_command(args: argparse.Namespace) -> int:
    if args.command == "token":
        return _run_token(args)
    if args.command == "join":
        return _run_join(args)
    return _run_certs(args)
