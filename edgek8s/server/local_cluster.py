"""``edgek8s up`` / ``edgek8s down``: a whole cluster on this machine, formed as on real Pis.

``up`` starts master-1 with ``--cluster-init`` (cluster CA, serving and admin certificates, cluster
secret), creates join tokens, and joins master-2..N (``edgek8s join --control-plane``) and the workers
(``edgek8s join``, which starts ``edgek8s agent``) by token over mTLS, pinning the CA, exactly the way a
new Pi joins. Then it builds the sample app image from ``images/sample-app`` into each worker's Podman
storage (no registry), deploys it with a hostPort, and checks it answers from this host.

Every node is an ordinary process with its own config dir, data dir and ports (nothing shared but the
state dir that holds them), so moving each into its own simulated host later changes only how it is
launched. Layout: ``<state>/cluster.json`` (what was started), ``<state>/<node>/`` (config dir, with
``data/`` and ``log``), ``<state>/admin.kubeconfig``. ``down`` stops every process, removes every pod,
container, image and network of the workers' Podman, and deletes the state dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edgek8s._util.ports import free_port as _free_port
from edgek8s.client.kubeconfig import load_kubeconfig
from edgek8s.config import ConfigError, PodmanConfig
from edgek8s.kubelet.podman_host import remove_everything, resolve
from edgek8s.pki.certs import client_tls_context
from edgek8s.server.images import SAMPLE_APP_IMAGE, build_image

READY_TIMEOUT = 60.0
SAMPLE_APP = "hello"


class UpError(Exception):
    """``up`` cannot go on; the message says what to do."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ready(api_url: str, ca_file: Path) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/readyz", timeout=2, context=client_tls_context(ca_file)) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _read_manifest(state_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((state_dir / "cluster.json").read_text())
        return manifest
    except (OSError, ValueError):
        return None


def _write_manifest(state_dir: Path, manifest: dict[str, Any]) -> None:
    (state_dir / "cluster.json").write_text(json.dumps(manifest, indent=2))


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / "admin.kubeconfig"


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _edgek8s(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgek8s", *args]


def _used_subnets() -> set[str]:
    """The /16 prefixes ("10.244") of IPv4 routes on this host, so a pod CIDR does not collide."""
    used = set()
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            destination = int(line.split()[1], 16)
            used.add(f"{destination & 0xFF}.{(destination >> 8) & 0xFF}")
    except (OSError, ValueError, IndexError):
        pass
    return used


def _pod_cidr(index: int) -> str:
    used = _used_subnets()
    for second in range(244, 256):
        if f"10.{second}" not in used:
            return f"10.{second}.{index}.0/24"
    raise UpError("no free 10.244-255.x.0/24 range for the pod network; free one or remove other bridges")


def preflight(workers: int) -> None:
    """Everything ``up`` needs, each missing piece named with its fix."""
    if workers == 0:
        return
    if os.geteuid() != 0:
        raise UpError("workers run pods with rootful Podman: run `edgek8s up` as root (or use --workers 0)")
    missing = [tool for tool in ("podman", "runc", "catatonit") if shutil.which(tool) is None]
    if missing:
        raise UpError(f"{', '.join(missing)} not found: workers run pods through Podman. Install with "
                      "`sudo scripts/install.sh` (or `apt-get install podman runc catatonit busybox-static`), "
                      "or run `edgek8s up --workers 0` for masters only")


class _Launcher:
    def __init__(self, state_dir: Path, manifest: dict[str, Any]) -> None:
        self.state_dir = state_dir
        self.manifest = manifest

    def spawn(self, role: str, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        home = self.state_dir / name
        home.mkdir(exist_ok=True, mode=0o700)
        log = open(home / "log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env={**os.environ, **(env or {})})
        finally:
            log.close()
        entry = {"name": name, "pid": process.pid, "log": str(home / "log"), "config_dir": str(home),
                 "data_dir": str(home / "data")}
        self.manifest[role].append(entry)
        _write_manifest(self.state_dir, self.manifest)
        return entry


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise UpError(f"{what} failed: {(result.stderr or result.stdout).strip()[-1500:]}")
    return result.stdout.strip()


def _wait_ready(master: dict[str, Any], ca_file: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not _alive(master["pid"]):
            raise UpError(f"{master['name']} exited; see {master['log']}")
        if ca_file.exists() and _ready(master["api"], ca_file):
            return
        time.sleep(0.2)
    raise UpError(f"{master['name']} not ready after {READY_TIMEOUT:.0f}s; see {master['log']}")


class _Api:
    """Admin requests from ``up`` (blocking urllib; ``up`` is a plain command, not a server)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def call(self, method: str, path: str, body: Any = None) -> Any:
        endpoint = load_kubeconfig(self.kubeconfig)  # read per call: master-1 renews the admin certificate
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(endpoint.server + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10, context=endpoint.ssl_context) as response:
            return json.loads(response.read())


def _wait_for(check: Any, what: str, timeout: float, alive: list[dict[str, Any]]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in alive:
            if not _alive(process["pid"]):
                raise UpError(f"{process['name']} exited while waiting for {what}; see {process['log']}")
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise UpError(f"timed out after {timeout:.0f}s waiting for {what}")


def _sample_app(host_port: int) -> dict[str, Any]:
    labels = {"app": SAMPLE_APP}
    container = {"name": "web", "image": SAMPLE_APP_IMAGE, "imagePullPolicy": "Never",
                 "ports": [{"containerPort": 8080, "hostPort": host_port}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
                 "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": SAMPLE_APP, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}


def up(state_dir: Path, *, masters: int = 3, workers: int = 1) -> int:
    if masters < 1 or workers < 0:
        print("edgek8s up: --masters must be at least 1 and --workers at least 0", file=sys.stderr)
        return 2
    existing = _read_manifest(state_dir)
    if existing and all(_alive(p["pid"]) for p in existing["masters"] + existing.get("workers", [])):
        _step(f"a local cluster is already running from {state_dir}")
        _print_next_steps(existing)
        return 0
    if existing:
        _step("cleaning up a previous local cluster that is no longer running")
        down(state_dir, quiet=True)
    try:
        preflight(workers)
        manifest = _up(state_dir, masters=masters, workers=workers)
    except (UpError, ConfigError) as exc:
        print(f"edgek8s up: {exc}", file=sys.stderr)
        print(f"edgek8s up: logs are in {state_dir}; `edgek8s down --state-dir {state_dir}` cleans up",
              file=sys.stderr)
        return 1
    _print_next_steps(manifest)
    return 0


def _up(state_dir: Path, *, masters: int, workers: int) -> dict[str, Any]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    manifest: dict[str, Any] = {"state_dir": str(state_dir), "masters": [], "workers": []}
    _write_manifest(state_dir, manifest)
    launcher = _Launcher(state_dir, manifest)
    deadline = time.monotonic() + READY_TIMEOUT * masters

    first_dir = state_dir / "master-1"
    ca_file = first_dir / "ca.crt"
    raft, api_port = f"127.0.0.1:{_free_port()}", _free_port()
    _step(f"starting master-1 with --cluster-init (cluster CA, certificates, cluster secret in {first_dir})")
    first = launcher.spawn("masters", "master-1", _edgek8s(
        "server", "--cluster-init", "--config-dir", str(first_dir), "--data-dir", str(first_dir / "data"),
        "--name", "master-1", f"--raft-address={raft}", f"--listen=127.0.0.1:{api_port}",
        "--advertise-address=127.0.0.1", "--mdns=off"))
    first.update(raft=raft, api=f"https://127.0.0.1:{api_port}")
    _write_manifest(state_dir, manifest)
    _wait_ready(first, ca_file, deadline)
    _step("master-1 is ready")
    # A link, not a copy: master-1 renews its admin certificate in that file.
    kubeconfig_path(state_dir).unlink(missing_ok=True)
    kubeconfig_path(state_dir).symlink_to(first_dir / "admin.kubeconfig")

    if masters > 1:
        token = _run(_edgek8s("token", "create", "--role", "master", "--ttl", "30m", "--config-dir", str(first_dir),
                              "--description", "edgek8s up"), "creating a master join token")
        for i in range(2, masters + 1):
            name = f"master-{i}"
            raft, api_port = f"127.0.0.1:{_free_port()}", _free_port()
            _step(f"joining {name} with a master token (CA pinned, Raft membership change)")
            entry = launcher.spawn("masters", name, _edgek8s(
                "join", "--token", token, "--control-plane", "--name", name, "--config-dir", str(state_dir / name),
                "--data-dir", str(state_dir / name / "data"), f"--raft-address={raft}",
                f"--listen=127.0.0.1:{api_port}", "--advertise-address=127.0.0.1", f"--server={first['api']}",
                "--foreground"))
            entry.update(raft=raft, api=f"https://127.0.0.1:{api_port}")
            _write_manifest(state_dir, manifest)
            _wait_ready(entry, ca_file, deadline)
            _step(f"{name} is ready")

    api = _Api(kubeconfig_path(state_dir))
    urls = [m["api"] for m in manifest["masters"]]
    if workers:
        token = _run(_edgek8s("token", "create", "--role", "worker", "--ttl", "30m", "--config-dir", str(first_dir),
                              "--description", "edgek8s up"), "creating a worker join token")
        for i in range(1, workers + 1):
            name = f"worker-{i}"
            cidr = _pod_cidr(i)
            _step(f"joining {name} with a worker token; its agent runs pods through Podman (pod network {cidr})")
            entry = launcher.spawn("workers", name, _edgek8s(
                "join", "--token", token, "--name", name, "--config-dir", str(state_dir / name),
                "--data-dir", str(state_dir / name / "data"), *[f"--server={u}" for u in urls], "--foreground"),
                env={"EDGEK8S_POD_CIDR": cidr, "EDGEK8S_KUBELET_PORT": str(_free_port())})
            entry["pod_cidr"] = cidr
            _write_manifest(state_dir, manifest)

        def nodes_ready() -> bool:
            nodes = api.call("GET", "/api/v1/nodes")["items"]
            ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in n["status"].get("conditions", []))]
            return len(ready) >= workers

        _wait_for(nodes_ready, "the workers to register and report Ready", 90, manifest["workers"])
        _step(f"{workers} worker(s) registered and Ready")
        for worker in manifest["workers"]:
            host = resolve(PodmanConfig(), Path(worker["data_dir"]))
            _wait_for(host.containers_conf.exists, f"{worker['name']}'s Podman", 60, [worker])
            _step(f"building {SAMPLE_APP_IMAGE} from images/sample-app into {worker['name']}'s Podman (no registry)")
            build_image(SAMPLE_APP_IMAGE, env=host.env())
        host_port = _free_port()
        _step(f"deploying the sample app (Deployment {SAMPLE_APP}, busybox httpd, hostPort {host_port})")
        api.call("POST", "/apis/apps/v1/namespaces/default/deployments", _sample_app(host_port))

        def app_ready() -> bool:
            pods = api.call("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dhello")["items"]
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for p in pods for c in (p.get("status") or {}).get("conditions", []))

        _wait_for(app_ready, "the sample app's pod to be Ready", 120, manifest["workers"])
        url = f"http://127.0.0.1:{host_port}/"

        def answers() -> bool:
            with urllib.request.urlopen(url, timeout=3) as response:
                return b"edgek8s" in response.read()

        _wait_for(answers, f"{url} to answer", 30, manifest["workers"])
        manifest["sample_app"] = url
        _write_manifest(state_dir, manifest)
        _step(f"the sample app answers at {url}")
    return manifest


def _command_name() -> str:
    """How to call edgek8s again: bare if it is on PATH, else the path next to this Python (a venv)."""
    beside = Path(sys.executable).parent / "edgek8s"
    if shutil.which("edgek8s") == str(beside) or not beside.exists():
        return "edgek8s"
    return str(beside)


def _print_next_steps(manifest: dict[str, Any]) -> None:
    state_dir = Path(manifest["state_dir"])
    edgek8s = _command_name()
    kubeconfig = kubeconfig_path(state_dir)
    workers = manifest.get("workers", [])
    print()
    print(f"The local control plane is up ({len(manifest['masters'])} masters, {len(workers)} workers). "
          f"Admin kubeconfig: {kubeconfig}")
    if manifest.get("sample_app"):
        print(f"The sample app (Deployment {SAMPLE_APP}) answers at {manifest['sample_app']}")
    print("Try:")
    print(f"  export KUBECONFIG={kubeconfig}")
    print("  kubectl get nodes -o wide")
    if workers:
        print("  kubectl get pods -o wide")
        if manifest.get("sample_app"):
            print(f"  curl {manifest['sample_app']}")
        print(f"  kubectl scale deployment {SAMPLE_APP} --replicas=2    (the second pod stays Pending: hostPort taken)")
        print(f"  kubectl describe pod -l app={SAMPLE_APP}        (events from the scheduler and the kubelet)")
        print(f"  kubectl logs -f deployment/{SAMPLE_APP}     kubectl exec -it deployment/{SAMPLE_APP} -- sh")
        print(f"  kubectl port-forward deployment/{SAMPLE_APP} 8080:8080     kubectl top pod")
    print("  kubectl get configmaps --watch        (in another terminal; then: kubectl create configmap hi)")
    print(f"  {edgek8s} status --kubeconfig {kubeconfig}")
    print(f"  {edgek8s} down --state-dir {state_dir}")


def down(state_dir: Path, *, quiet: bool = False) -> int:
    manifest = _read_manifest(state_dir)
    workers = manifest.get("workers", []) if manifest else []
    masters = manifest["masters"] if manifest else []
    processes = workers + masters  # agents first: they would otherwise keep retrying the masters
    for process in processes:
        if _alive(process["pid"]):
            os.killpg(process["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_alive(p["pid"]) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes:
        if _alive(process["pid"]):
            os.killpg(process["pid"], signal.SIGKILL)
    for worker in workers:
        if shutil.which("podman") is not None:
            asyncio.run(remove_everything(resolve(PodmanConfig(), Path(worker["data_dir"]))))
    if state_dir.exists():
        shutil.rmtree(state_dir)
    if not quiet:
        print(f"stopped {len(masters)} masters and {len(workers)} workers (their pods, containers and images "
              f"removed) and removed {state_dir}")
    return 0
