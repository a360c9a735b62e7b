"""Entry point: `python -m bench <name> [options]` runs one benchmark.

Each benchmark module exposes `main(argv: list[str]) -> int`, prints its
figures next to its anchor measured in the same run, and ends stdout with
exactly one JSON line of its figures. Register new ones in BENCHMARKS.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line description). The module is imported only when run.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "store": ("bench.store", "replicated object store writes, failover and RSS vs a 3-node etcd 3.4"),
    "raftcrypto": ("bench.raftcrypto", "per-message cost of Raft transport protection: Fernet, TLS, edgek8s AEAD"),
    "writecpu": ("bench.writecpu", "CPU time per acknowledged create on the leader and followers (edgek8s only)"),
    "createcalls": ("bench.createcalls", "Python calls and CPU per ConfigMap create: the proposer's path, apply"),
    "seqtrace": ("bench.seqtrace", "per-stage latency of sequential writes, hop by hop over the masters (edgek8s)"),
    "api": ("bench.api", "GET/LIST latency and kubectl get pods -A with 3,000 pods under writes, vs the API SLOs"),
    "scheduler": ("bench.scheduler", "pods bound/s and p99 scheduling latency on 100 hollow nodes; leader failover"),
    "idlewrites": ("bench.idlewrites", "idle disk writes per process (3 TLS masters, 1 worker) and the Raft entries"),
    "journalwrites": ("bench.journalwrites", "device writes per idle Raft entry on loop-mounted ext4 (Pi options), "
                                             "appended vs preallocated journal"),
    "podstartup": ("bench.podstartup", "create->Ready p99 of 100 pods on one Podman node, agent RSS, idle disk writes"),
}


def usage() -> str:
    lines = [
        "usage: python -m bench <name> [options]   (python -m bench <name> --help for options)",
        "",
        "benchmarks:",
    ]
    lines += [f"  {name:<12} {desc}" for name, (_, desc) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    try:
        code: int = module.main(rest)
    except KeyboardInterrupt:
        # The benchmark's own finally blocks have stopped its processes by now.
        print(f"bench {name}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
