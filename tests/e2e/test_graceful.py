"""Graceful pod deletion, eviction and PodDisruptionBudgets with the real kubectl and a real Podman worker.

- `kubectl delete pod` of a pod whose container ignores SIGTERM takes the grace the pod asked for (the
  pod shows Terminating meanwhile); one that exits on SIGTERM goes at once;
- `kubectl delete --grace-period=0 --force` removes a pod from the API at once;
- a second `kubectl delete` with a shorter grace (or `--force`) shortens a stop already under way;
- `kubectl drain` evicts through pods/eviction and stops at a PodDisruptionBudget (429, retried);
- a Deployment counts terminating pods as gone: a replacement runs while the old pod still terminates.

The worker is the session's (tests/e2e/streams_support.py): tainted, so these tests' pods either name it or
tolerate the taint and select it by hostname.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from edgek8s.kubelet.runtime import LABEL_POD_UID
from tests.e2e.kubectl_support import Kubectl, manifest, parse_table
from tests.e2e.streams_support import Worker

compat = pytest.mark.compat

IGNORES_TERM = "trap '' TERM; while true; do sleep 0.2; done"
EXITS_ON_TERM = "trap 'exit 0' TERM; while true; do sleep 0.2; done"
TAINT = {"key": "edgek8s.io/e2e-streams-only", "operator": "Exists", "effect": "NoSchedule"}


def pod_spec(worker: Worker, script: str, grace: int) -> dict[str, Any]:
    return {"terminationGracePeriodSeconds": grace, "tolerations": [TAINT],
            "containers": [{"name": "c", "image": worker.image, "imagePullPolicy": "Never",
                            "command": ["sh", "-c", script],
                            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]}


def bare_pod(worker: Worker, name: str, script: str, grace: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": worker.node, **pod_spec(worker, script, grace)}}


def deployment(worker: Worker, name: str, replicas: int, script: str, grace: int) -> dict[str, Any]:
    spec = pod_spec(worker, script, grace)
    spec["nodeSelector"] = {"kubernetes.io/hostname": worker.node}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def pods(kubectl: Kubectl, ns: str, app: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "pods", "-n", ns, "-l", f"app={app}")["items"])


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def status_column(kubectl: Kubectl, ns: str, name: str) -> str:
    _header, rows = parse_table(kubectl("get", "pod", name, "-n", ns).stdout)
    return rows[0]["STATUS"]


@compat("kubectl delete", "pod (graceful: terminationGracePeriodSeconds)")
def test_delete_takes_the_grace_the_pod_asked_for(kubectl: Kubectl, worker: Worker, ns: str) -> None:
    kubectl("create", "-n", ns, "-f", "-", input=manifest(bare_pod(worker, "stubborn", IGNORES_TERM, 5),
                                                          bare_pod(worker, "polite", EXITS_ON_TERM, 30)))
    for name in ("stubborn", "polite"):
        worker.wait_for(ns, name, ready, "Ready")

    with kubectl.popen("delete", "pod", "stubborn", "-n", ns) as waiting:  # kubectl waits until the pod is gone
        started = time.monotonic()
        until("stubborn to show Terminating", lambda: status_column(kubectl, ns, "stubborn") == "Terminating", 10)
        marked = kubectl.json("get", "pod", "stubborn", "-n", ns)["metadata"]
        assert marked["deletionGracePeriodSeconds"] == 5
        assert waiting.next_line(lambda line: "deleted" in line, timeout=60) == 'pod "stubborn" deleted'
        assert waiting.process.wait(timeout=60) == 0  # printed at once; it then waits for the pod to go
        took = time.monotonic() - started
    assert 4.0 <= took < 25.0, f"a container ignoring SIGTERM with a 5 s grace was gone after {took:.1f}s"
    gone = kubectl("get", "pod", "stubborn", "-n", ns, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    started = time.monotonic()
    out = kubectl("delete", "pod", "polite", "-n", ns, timeout=60)
    took = time.monotonic() - started
    assert out.stdout.strip() == 'pod "polite" deleted'
    assert took < 12.0, f"a container that exits on SIGTERM took {took:.1f}s of its 30 s grace"


@compat("kubectl delete", "--grace-period=0 --force")
def test_force_delete_is_immediate(kubectl: Kubectl, worker: Worker, ns: str) -> None:
    kubectl("create", "-n", ns, "-f", "-", input=manifest(bare_pod(worker, "stuck", IGNORES_TERM, 300)))
    uid = worker.wait_for(ns, "stuck", ready, "Ready")["metadata"]["uid"]
    started = time.monotonic()
    out = kubectl("delete", "pod", "stuck", "-n", ns, "--grace-period=0", "--force")
    assert time.monotonic() - started < 8.0
    assert 'pod "stuck" force deleted' in out.stdout
    gone = kubectl("get", "pod", "stuck", "-n", ns, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    # The kubelet stops its containers shortly after (a force-deleted pod gets a short grace, not 300 s).
    until("the force-deleted pod's containers to stop",
          lambda: not worker.podman("ps", "-q", "--filter", f"label={LABEL_POD_UID}={uid}").strip(), 30)


@pytest.mark.parametrize("second", [
    pytest.param(("--grace-period=1",), id="grace1",
                 marks=compat("kubectl delete", "--grace-period=1 while a longer grace runs")),
    pytest.param(("--grace-period=0", "--force"), id="force",
                 marks=compat("kubectl delete", "--grace-period=0 --force while a graceful stop runs")),
])
def test_a_second_shorter_delete_shortens_the_stop_under_way(kubectl: Kubectl, worker: Worker, ns: str,
                                                              second: tuple[str, ...]) -> None:
    kubectl("create", "-n", ns, "-f", "-", input=manifest(bare_pod(worker, "slow", IGNORES_TERM, 30)))
    uid = worker.wait_for(ns, "slow", ready, "Ready")["metadata"]["uid"]

    def running() -> str:
        return worker.podman("ps", "-q", "--filter", f"label={LABEL_POD_UID}={uid}").strip()

    kubectl("delete", "pod", "slow", "-n", ns, "--wait=false")
    until("slow to show Terminating", lambda: status_column(kubectl, ns, "slow") == "Terminating", 10)
    time.sleep(3.0)  # the kubelet's stop with the 30 s grace is under way: SIGTERM was ignored, no SIGKILL yet
    assert running(), "the first delete alone must wait its 30 s grace"
    assert kubectl.json("get", "pod", "slow", "-n", ns)["metadata"]["deletionGracePeriodSeconds"] == 30

    started = time.monotonic()
    out = kubectl("delete", "pod", "slow", "-n", ns, *second, "--wait=false")
    assert 'pod "slow"' in out.stdout and "deleted" in out.stdout
    until("the pod's containers to be gone", lambda: not running(), 30)
    stopped = time.monotonic() - started
    until("the pod to leave the API", lambda: "NotFound" in kubectl("get", "pod", "slow", "-n", ns, check=False).stderr,
          30)
    gone = time.monotonic() - started
    # 1 s (or the 2 s a force-deleted pod gets) + Podman and kubectl on a loaded 2-core machine; 30 s are far.
    assert stopped < 10.0, f"a second delete {' '.join(second)} left the containers running for {stopped:.1f}s"
    # Podman's pod removal takes ~3.5 s more for a container that had exec sessions (its readiness probe).
    assert gone < 15.0, f"a second delete {' '.join(second)} left the pod in the API for {gone:.1f}s"


@compat("kubectl drain", "--pod-selector (pods/eviction, PodDisruptionBudget)")
def test_drain_evicts_and_respects_a_disruption_budget(kubectl: Kubectl, worker: Worker, ns: str) -> None:
    kubectl("create", "-n", ns, "-f", "-", input=manifest(deployment(worker, "web", 2, EXITS_ON_TERM, 10)))
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
              "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}
    kubectl("create", "-n", ns, "-f", "-", input=manifest(budget))
    first = until("2 ready web pods", lambda: (lambda p: p if len(p) == 2 and all(map(ready, p)) else None)(
        pods(kubectl, ns, "web")), 90)

    def pdb_row() -> dict[str, str]:
        header, rows = parse_table(kubectl("get", "pdb", "-n", ns).stdout)
        assert header == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
        return rows[0]

    until("the budget's status", lambda: pdb_row()["ALLOWED DISRUPTIONS"] == "0" and
          kubectl.json("get", "pdb", "web", "-n", ns).get("status", {}).get("currentHealthy") == 2, 30)
    assert pdb_row()["MIN AVAILABLE"] == "2" and pdb_row()["MAX UNAVAILABLE"] == "N/A"
    drain = ("drain", worker.node, "--pod-selector", "app=web", "--ignore-daemonsets", "--delete-emptydir-data")
    try:
        blocked = kubectl(*drain, "--timeout=7s", check=False, timeout=60)
        assert blocked.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget" in blocked.stderr
        assert not any(terminating(p) for p in pods(kubectl, ns, "web"))  # nothing was evicted

        kubectl("patch", "pdb", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
        until("one disruption allowed", lambda: pdb_row()["ALLOWED DISRUPTIONS"] == "1", 30)
        # One pod goes; its replacement cannot start on the cordoned node, so the second eviction waits.
        partial = kubectl(*drain, "--timeout=8s", check=False, timeout=60)
        assert partial.returncode != 0
        assert "evicting pod" in partial.stdout + partial.stderr
        originals = {p["metadata"]["name"] for p in first}
        left = [p for p in pods(kubectl, ns, "web") if p["metadata"]["name"] in originals and not terminating(p)]
        assert len(left) == 1, f"the budget allowed one eviction; still running: {left}"

        kubectl("delete", "pdb", "web", "-n", ns)
        done = kubectl(*drain, "--timeout=60s", timeout=90)
        assert f"node/{worker.node} drained" in done.stdout
        assert not [p for p in pods(kubectl, ns, "web") if p["metadata"]["name"] in originals]
    finally:
        kubectl("uncordon", worker.node)


@compat("kubectl scale", "deployment (terminating pods are not counted)")
def test_a_deployment_replaces_pods_while_they_terminate(kubectl: Kubectl, worker: Worker, ns: str) -> None:
    kubectl("create", "-n", ns, "-f", "-", input=manifest(deployment(worker, "slow", 2, IGNORES_TERM, 20)))
    until("2 ready pods", lambda: (lambda p: p if len(p) == 2 and all(map(ready, p)) else None)(
        pods(kubectl, ns, "slow")), 90)
    try:
        kubectl("scale", "deployment", "slow", "-n", ns, "--replicas=1")
        # The surplus pod terminates for up to 20 s; the Deployment already counts one replica.
        until("1 replica with one pod terminating", lambda: (
            kubectl.json("get", "deployment", "slow", "-n", ns).get("status", {}).get("replicas") == 1
            and sum(map(terminating, pods(kubectl, ns, "slow"))) == 1), 15)
        _header, rows = parse_table(kubectl("get", "pods", "-n", ns, "-l", "app=slow").stdout)
        assert sorted(r["STATUS"] for r in rows) == ["Running", "Terminating"]

        running = next(p for p in pods(kubectl, ns, "slow") if not terminating(p))
        kubectl("delete", "pod", running["metadata"]["name"], "-n", ns, "--wait=false")

        def replaced() -> Any:
            current = pods(kubectl, ns, "slow")
            fresh = [p for p in current if not terminating(p) and ready(p)]
            old = [p for p in current if p["metadata"]["name"] == running["metadata"]["name"]]
            return fresh if len(fresh) == 1 and old and terminating(old[0]) else None

        until("a ready replacement while the deleted pod still terminates", replaced, 15)
    finally:
        kubectl("delete", "deployment", "slow", "-n", ns, "--wait=false")
        kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", check=False)
