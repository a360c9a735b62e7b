"""A private Podman for tests: its own storage, run root, network configs and API socket, so tests never
touch (or see) the containers, images and networks of anyone else on the machine; a busybox image built
locally.

The containers.conf is the one these hosts need (runc, cgroupfs, explicit ulimits; see
reference/environment.md). ``PrivatePodman.run(*args)`` runs the podman CLI against the same storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "{networks}"
"""
BUSYBOX_IMAGE = "localhost/edgek8s-test-busybox:1"


class PrivatePodman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "podman.sock"
        self.conf = base / "containers.conf"
        self._service: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def command(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.base / "root"), "--runroot", str(self.base / "run"), *args]

    def run(self, *args: str, input: bytes | None = None, timeout: float = 60) -> str:
        result = subprocess.run(self.command(*args), input=input, capture_output=True, timeout=timeout,
                                env=self.env, check=False)
        if result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        # Networks are machine-wide unless configured apart: keep ours (the agent's pod network) private.
        self.conf.write_text(CONTAINERS_CONF.format(networks=self.base / "networks"))
        log = open(self.base / "service.log", "wb")  # noqa: SIM115 - handed to the child
        self._service = subprocess.Popen(
            self.command("system", "service", "--time=0", f"unix://{self.socket}"),
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if time.monotonic() > deadline or self._service.poll() is not None:
                raise AssertionError(f"podman service did not start: {(self.base / 'service.log').read_text()}")
            time.sleep(0.05)

    def build_busybox(self) -> str:
        context = self.base / "busybox-image"
        context.mkdir(exist_ok=True)
        shutil.copy("/bin/busybox", context / "busybox")
        (context / "Containerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            'RUN ["/bin/mkdir", "-m", "1777", "/tmp"]\nCMD ["sh"]\n')
        self.run("build", "-q", "-t", BUSYBOX_IMAGE, str(context), timeout=120)
        return BUSYBOX_IMAGE

    def stop(self) -> None:
        ids = self.run("ps", "-aq").split()
        if ids:
            subprocess.run(self.command("rm", "-f", "-t", "0", *ids), capture_output=True, env=self.env, check=False)
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait()
        # Not `podman system reset`: it also removes machine-wide networks that other users' containers need.
        subprocess.run(self.command("rmi", "-af"), capture_output=True, env=self.env, check=False, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
