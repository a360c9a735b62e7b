"""Capture a protobuf request body the real kubectl sends, with its JSON oracle, as a test fixture.

Development tool for tests/fixtures/protobuf/ (read by tests/unit/test_protobuf.py). It runs the kubectl
command twice against a running cluster (KUBECONFIG from the environment, e.g. an `edgek8s up` state dir):
  1. with `-v=10`, which makes client-go log each request body as a hex dump; the first protobuf body
     (`k8s\\x00` prefix) is written to NAME.bin;
  2. with `--dry-run=client -o json`, kubectl's own JSON of the same object, written to NAME.json.
Usage:

    python scripts/capture_protobuf_fixture.py NAME -- create deployment web --image=nginx -n demo

The first run really creates the object: use a scratch namespace.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "protobuf"
_HEX_LINE = re.compile(r"^\s*[0-9a-f]{8}\s+((?:[0-9a-f]{2}\s{1,2}){1,16})")


def protobuf_body(log: str) -> bytes:
    """The first hex-dumped request body of a `kubectl -v=10` log that starts with the protobuf magic."""
    lines = log.splitlines()
    for start, line in enumerate(lines):
        if '"Request Body"' not in line or "body=<" not in line:
            continue
        body = bytearray()
        for dump in lines[start + 1:]:
            match = _HEX_LINE.match(dump)
            if match is None:
                break
            body += bytes.fromhex("".join(match.group(1).split()))
        if body.startswith(b"k8s\x00"):
            return bytes(body)
    raise SystemExit("kubectl sent no protobuf body")


def with_dry_run(args: list[str]) -> list[str]:
    split = args.index("--") if "--" in args else len(args)  # flags after `--` belong to the container
    return [*args[:split], "--dry-run=client", "-o", "json", *args[split:]]


def main() -> None:
    name, separator, *args = sys.argv[1:]
    if separator != "--" or not args:
        raise SystemExit(__doc__)
    sent = subprocess.run(["kubectl", "-v=10", *args], capture_output=True, text=True, check=False, timeout=60)
    body = protobuf_body(sent.stderr)
    dry_run = subprocess.run(["kubectl", *with_dry_run(args)], capture_output=True, text=True, check=True,
                             timeout=60)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / f"{name}.bin").write_bytes(body)
    oracle = {"command": "kubectl " + " ".join(args), "dry_run_json": json.loads(dry_run.stdout)}
    (FIXTURES / f"{name}.json").write_text(json.dumps(oracle, indent=1) + "\n")
    print(f"{name}: {len(body)} bytes; kubectl exited {sent.returncode}")


if __name__ == "__main__":
    main()
