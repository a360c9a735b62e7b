"""Server-side Tables: upstream's columns, the exact cells kubectl 1.32 prints, and includeObject."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from edgek8s.model.errors import BadRequest
from edgek8s.registry.tables import column_definitions, human_duration, table_for_list, table_for_object

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp ``delta`` before NOW, as the apiserver writes them."""
    return (NOW - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, *, age: dict[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": "42",
        "creationTimestamp": ago(**(age or {"minutes": 5})),
    }
    metadata.update(extra)
    return metadata


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    table = table_for_object(kind, obj, now=NOW)
    [row] = table["rows"]
    assert len(row["cells"]) == len(table["columnDefinitions"])
    return list(row["cells"])


def columns(kind: str) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in column_definitions(kind)]


# --- human_duration and Age ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (datetime.timedelta(seconds=-5), "<invalid>"),
        (datetime.timedelta(seconds=-2), "<invalid>"),
        (datetime.timedelta(seconds=-1.5), "0s"),  # truncated toward zero: -1s is clock skew, not invalid
        (datetime.timedelta(seconds=-1), "0s"),
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(seconds=0.999), "0s"),
        (datetime.timedelta(seconds=59), "59s"),
        (datetime.timedelta(seconds=90), "90s"),
        (datetime.timedelta(seconds=119.999), "119s"),
        (datetime.timedelta(seconds=120), "2m"),
        (datetime.timedelta(minutes=3, seconds=5), "3m5s"),
        (datetime.timedelta(minutes=5), "5m"),
        (datetime.timedelta(minutes=9, seconds=59), "9m59s"),
        (datetime.timedelta(minutes=10), "10m"),
        (datetime.timedelta(minutes=10, seconds=30), "10m"),
        (datetime.timedelta(minutes=179, seconds=59), "179m"),
        (datetime.timedelta(hours=3), "3h"),
        (datetime.timedelta(hours=5, minutes=1, seconds=59), "5h1m"),
        (datetime.timedelta(hours=7, minutes=59), "7h59m"),
        (datetime.timedelta(hours=8), "8h"),
        (datetime.timedelta(hours=8, minutes=30), "8h"),
        (datetime.timedelta(hours=47, minutes=59), "47h"),
        (datetime.timedelta(hours=48), "2d"),
        (datetime.timedelta(days=2, hours=3), "2d3h"),
        (datetime.timedelta(days=7, hours=23, minutes=59), "7d23h"),
        (datetime.timedelta(days=8), "8d"),
        (datetime.timedelta(days=8, hours=5), "8d"),
        (datetime.timedelta(days=400), "400d"),
        (datetime.timedelta(days=729, hours=23), "729d"),
        (datetime.timedelta(days=730), "2y"),
        (datetime.timedelta(days=731), "2y1d"),
        (datetime.timedelta(days=365 * 8 - 1), "7y364d"),
        (datetime.timedelta(days=365 * 8), "8y"),
        (datetime.timedelta(days=365 * 10 + 100), "10y"),
    ],
)
def test_human_duration_follows_upstream(delta: datetime.timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (ago(seconds=119), "119s"),
        (ago(seconds=120), "2m"),
        (ago(hours=2, minutes=59, seconds=59), "179m"),
        (ago(days=3), "3d"),
        ((NOW + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "0s"),  # clock skew
        ((NOW + datetime.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), "<invalid>"),
        ("2025-06-01T11:59:00.123456Z", "59s"),  # MicroTime precision
        ("2025-06-01T13:59:00+02:00", "60s"),  # any offset
        ("", "<unknown>"),
        (None, "<unknown>"),
        ("not a time", "<unknown>"),
    ],
)
def test_age_is_computed_from_creation_timestamp_and_now(created: str | None, expected: str) -> None:
    obj = {"metadata": {"name": "cm", "creationTimestamp": created}}
    assert cells("ConfigMap", obj) == ["cm", 0, expected]


def test_a_naive_now_is_taken_as_utc() -> None:
    table = table_for_object("Lease", {"metadata": meta("l", age={"minutes": 7})}, now=NOW.replace(tzinfo=None))
    assert table["rows"][0]["cells"] == ["l", "", "7m"]


# --- column definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "Pod",
            [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
             ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)],
        ),
        (
            "Node",
            [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0), ("Internal-IP", 1),
             ("External-IP", 1), ("OS-Image", 1), ("Kernel-Version", 1), ("Container-Runtime", 1)],
        ),
        ("Namespace", [("Name", 0), ("Status", 0), ("Age", 0)]),
        (
            "Deployment",
            [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0),
             ("Containers", 1), ("Images", 1), ("Selector", 1)],
        ),
        (
            "ReplicaSet",
            [("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0),
             ("Containers", 1), ("Images", 1), ("Selector", 1)],
        ),
        (
            "DaemonSet",
            [("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0),
             ("Node Selector", 0), ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)],
        ),
        (
            "Service",
            [("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0),
             ("Selector", 1)],
        ),
        ("Endpoints", [("Name", 0), ("Endpoints", 0), ("Age", 0)]),
        ("ConfigMap", [("Name", 0), ("Data", 0), ("Age", 0)]),
        ("Secret", [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]),
        (
            "Event",
            [("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
             ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)],
        ),
        ("Lease", [("Name", 0), ("Holder", 0), ("Age", 0)]),
        ("Widget", [("Name", 0), ("Age", 0)]),
    ],
)
def test_columns_and_priorities_match_upstream(kind: str, expected: list[tuple[str, int]]) -> None:
    assert columns(kind) == expected


def test_column_definitions_carry_type_format_and_description() -> None:
    pod = {c["name"]: c for c in column_definitions("Pod")}
    assert list(pod["Name"]) == ["name", "type", "format", "description", "priority"]
    assert (pod["Name"]["type"], pod["Name"]["format"]) == ("string", "name")
    assert pod["Name"]["description"].startswith("Name must be unique within a namespace.")
    assert pod["Restarts"]["type"] == "string"  # "integer" before 1.22, a "N (Xm ago)" string since
    assert pod["Age"]["description"].startswith("CreationTimestamp is a timestamp")
    assert pod["IP"]["description"].startswith("podIP address allocated to the pod.")
    assert all(c["format"] == "" for name, c in pod.items() if name != "Name")
    rs = {c["name"]: c for c in column_definitions("ReplicaSet")}
    assert [rs[n]["type"] for n in ("Desired", "Current", "Ready")] == ["integer"] * 3
    event = {c["name"]: c for c in column_definitions("Event")}
    assert (event["Name"]["format"], event["Last Seen"]["format"]) == ("name", "")
    assert all(c["description"] for kind in ("Pod", "Node", "Event", "Widget") for c in column_definitions(kind))


def test_column_definitions_are_fresh_copies() -> None:
    column_definitions("Pod")[0]["name"] = "mutated"
    assert column_definitions("Pod")[0]["name"] == "Name"


# --- pods ------------------------------------------------------------------------------------------


def container(name: str, image: str = "nginx:1.27") -> dict[str, Any]:
    return {"name": name, "image": image}


def running(name: str, *, ready: bool = True, restarts: int = 0, last_finished: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": name,
        "ready": ready,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(minutes=4)}},
        "image": "nginx:1.27",
        "imageID": "",
        "containerID": f"containerd://{name}",
    }
    if last_finished is not None:
        status["lastTerminationState"] = {
            "terminated": {"exitCode": 1, "reason": "Error", "startedAt": ago(hours=1), "finishedAt": last_finished}
        }
    return status


def waiting(name: str, reason: str, *, restarts: int = 0, last_finished: str | None = None) -> dict[str, Any]:
    status = running(name, ready=False, restarts=restarts, last_finished=last_finished)
    status["started"] = False
    status["state"] = {"waiting": {"reason": reason, "message": "..."}}
    return status


def terminated(name: str, *, exit_code: int = 0, reason: str = "", signal: int = 0) -> dict[str, Any]:
    status = running(name, ready=False)
    status["started"] = False
    state: dict[str, Any] = {"exitCode": exit_code, "startedAt": ago(minutes=4), "finishedAt": ago(minutes=3)}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    status["state"] = {"terminated": state}
    return status


def pod(
    name: str = "web-1",
    *,
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [container("nginx")], "nodeName": "node-1"}
    if init_containers is not None:
        spec["initContainers"] = init_containers
    status: dict[str, Any] = {"phase": phase, "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}]}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, **metadata), "spec": spec, "status": status}


def condition(type_: str, status: str = "True", reason: str = "") -> dict[str, Any]:
    result = {"type": type_, "status": status, "lastTransitionTime": ago(minutes=4)}
    if reason:
        result["reason"] = reason
    return result


def pod_status(obj: dict[str, Any]) -> tuple[str, str, str]:
    """Ready, Status and Restarts of a pod."""
    row = cells("Pod", obj)
    return row[1], row[2], row[3]


def test_running_pod_prints_every_column() -> None:
    obj = pod(
        containers=[container("nginx"), container("sidecar", "busybox")],
        statuses=[running("nginx"), running("sidecar")],
        conditions=[condition("Initialized"), condition("Ready"), condition("PodScheduled")],
    )
    assert cells("Pod", obj) == [
        "web-1", "2/2", "Running", "0", "5m", "10.244.1.7", "node-1", "<none>", "<none>",
    ]
    assert "conditions" not in table_for_object("Pod", obj, now=NOW)["rows"][0]


def test_pending_pod_not_yet_scheduled() -> None:
    obj = {
        "metadata": meta("pending", age={"seconds": 3}),
        "spec": {"containers": [container("app")]},
        "status": {
            "phase": "Pending",
            "conditions": [condition("PodScheduled", "False", "Unschedulable")],
            "nominatedNodeName": "node-2",
        },
    }
    assert cells("Pod", obj) == ["pending", "0/1", "Pending", "0", "3s", "<none>", "<none>", "node-2", "<none>"]


def test_pod_ip_comes_from_pod_ip_then_pod_ips() -> None:
    obj = pod()
    del obj["status"]["podIP"]
    obj["status"]["podIPs"] = [{"ip": "fd00::7"}, {"ip": "10.0.0.7"}]
    assert cells("Pod", obj)[5] == "fd00::7"
    obj["status"]["podIP"] = "10.0.0.9"  # podIP is authoritative when both are set and differ
    assert cells("Pod", obj)[5] == "10.0.0.9"


def test_containers_creating() -> None:
    obj = pod(phase="Pending", statuses=[waiting("nginx", "ContainerCreating")])
    assert pod_status(obj) == ("0/1", "ContainerCreating", "0")


def test_crash_loop_back_off_with_restarts_ago() -> None:
    obj = pod(
        containers=[container("app"), container("nginx")],
        statuses=[
            waiting("app", "CrashLoopBackOff", restarts=4, last_finished=ago(seconds=75)),
            running("nginx", restarts=1, last_finished=ago(minutes=20)),
        ],
    )
    # The most recent termination of any container gives the "(… ago)".
    assert pod_status(obj) == ("1/2", "CrashLoopBackOff", "5 (75s ago)")


def test_restarts_without_a_last_termination_print_the_bare_count() -> None:
    obj = pod(statuses=[running("nginx", restarts=2)])
    assert pod_status(obj) == ("1/1", "Running", "2")


def test_running_but_not_ready() -> None:
    obj = pod(statuses=[running("nginx", ready=False)])
    assert pod_status(obj) == ("0/1", "Running", "0")


@pytest.mark.parametrize(
    ("init_statuses", "expected"),
    [
        # First init container still running: Init:<index>/<count>.
        ([running("setup", ready=False), waiting("migrate", "PodInitializing")], "Init:0/2"),
        ([terminated("setup", reason="Completed"), running("migrate", ready=False)], "Init:1/2"),
        ([terminated("setup", reason="Completed"), waiting("migrate", "PodInitializing")], "Init:1/2"),
        ([waiting("setup", "CrashLoopBackOff"), waiting("migrate", "PodInitializing")], "Init:CrashLoopBackOff"),
        ([waiting("setup", "ImagePullBackOff"), waiting("migrate", "PodInitializing")], "Init:ImagePullBackOff"),
        ([terminated("setup", exit_code=1, reason="Error"), waiting("migrate", "PodInitializing")], "Init:Error"),
        ([terminated("setup", exit_code=2), waiting("migrate", "PodInitializing")], "Init:ExitCode:2"),
        ([terminated("setup", exit_code=137, signal=9), waiting("migrate", "PodInitializing")], "Init:Signal:9"),
    ],
)
def test_init_container_states(init_statuses: list[dict[str, Any]], expected: str) -> None:
    obj = pod(
        phase="Pending",
        init_containers=[container("setup", "busybox"), container("migrate", "busybox")],
        init_statuses=init_statuses,
        statuses=[waiting("nginx", "PodInitializing")],
        conditions=[condition("Initialized", "False", "ContainersNotInitialized")],
    )
    assert pod_status(obj) == ("0/1", expected, "0")


def test_init_container_restarts_count_while_initializing() -> None:
    obj = pod(
        phase="Pending",
        init_containers=[container("setup", "busybox")],
        init_statuses=[waiting("setup", "CrashLoopBackOff", restarts=3, last_finished=ago(minutes=2))],
        statuses=[waiting("nginx", "PodInitializing", restarts=9)],
    )
    # Regular containers are not looked at while initialising: their restarts are not counted.
    assert pod_status(obj) == ("0/1", "Init:CrashLoopBackOff", "3 (2m ago)")


def test_finished_init_containers_do_not_count_once_initialized() -> None:
    obj = pod(
        init_containers=[container("setup", "busybox")],
        init_statuses=[{**terminated("setup", reason="Completed"), "restartCount": 2}],
        statuses=[running("nginx")],
        conditions=[condition("Initialized"), condition("Ready")],
    )
    assert pod_status(obj) == ("1/1", "Running", "0")


def test_sidecar_init_containers_count_as_containers() -> None:
    sidecar = {**container("proxy", "envoy"), "restartPolicy": "Always"}
    obj = pod(
        init_containers=[container("setup", "busybox"), sidecar],
        init_statuses=[
            terminated("setup", reason="Completed"),
            running("proxy", restarts=1, last_finished=ago(minutes=3)),
        ],
        statuses=[running("nginx")],
        conditions=[condition("Initialized"), condition("Ready")],
    )
    assert pod_status(obj) == ("2/2", "Running", "1 (3m ago)")


def test_sidecar_not_started_blocks_initialization() -> None:
    sidecar = {**container("proxy", "envoy"), "restartPolicy": "Always"}
    proxy = running("proxy", ready=False)
    proxy["started"] = False
    obj = pod(
        phase="Pending",
        init_containers=[sidecar],
        init_statuses=[proxy],
        statuses=[waiting("nginx", "PodInitializing")],
    )
    assert pod_status(obj) == ("0/2", "Init:0/1", "0")


def test_completed_pod_and_its_row_condition() -> None:
    obj = pod(phase="Succeeded", statuses=[terminated("nginx", reason="Completed")])
    row = table_for_object("Pod", obj, now=NOW)["rows"][0]
    assert row["cells"][1:4] == ["0/1", "Completed", "0"]
    assert row["conditions"] == [
        {"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}
    ]


def test_failed_pod_and_its_row_condition() -> None:
    obj = pod(phase="Failed", statuses=[terminated("nginx", exit_code=1, reason="Error")])
    row = table_for_object("Pod", obj, now=NOW)["rows"][0]
    assert row["cells"][1:4] == ["0/1", "Error", "0"]
    assert row["conditions"] == [
        {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (terminated("nginx", exit_code=137, signal=9), "Signal:9"),
        (terminated("nginx", exit_code=3), "ExitCode:3"),
        (terminated("nginx", exit_code=137, reason="OOMKilled"), "OOMKilled"),
    ],
)
def test_terminated_container_reasons(state: dict[str, Any], expected: str) -> None:
    assert pod_status(pod(statuses=[state]))[1] == expected


@pytest.mark.parametrize(
    ("ready_condition", "expected"),
    [(None, "NotReady"), (condition("Ready", "False"), "NotReady"), (condition("Ready"), "Running")],
)
def test_completed_container_beside_a_running_one(ready_condition: dict[str, Any] | None, expected: str) -> None:
    obj = pod(
        containers=[container("nginx"), container("job")],
        statuses=[running("nginx"), terminated("job", reason="Completed")],
        conditions=[ready_condition] if ready_condition else [],
    )
    # Statuses are read last to first: "job" decides the reason, then the running "nginx" overrides it.
    assert pod_status(obj) == ("1/2", expected, "0")


def test_evicted_pod_shows_the_status_reason() -> None:
    obj = pod(phase="Failed", statuses=[terminated("nginx", exit_code=137, reason="ContainerStatusUnknown")])
    obj["status"]["reason"] = "Evicted"
    obj["status"]["containerStatuses"] = []
    assert pod_status(obj) == ("0/1", "Evicted", "0")


def test_scheduling_gated_pod() -> None:
    obj = pod(phase="Pending", conditions=[condition("PodScheduled", "False", "SchedulingGated")])
    assert pod_status(obj) == ("0/1", "SchedulingGated", "0")


def test_terminating_pod() -> None:
    obj = pod(statuses=[running("nginx")], deletionTimestamp=ago(seconds=10), deletionGracePeriodSeconds=30)
    assert pod_status(obj) == ("1/1", "Terminating", "0")


def test_a_deleted_finished_pod_keeps_its_final_status() -> None:
    obj = pod(phase="Succeeded", statuses=[terminated("nginx", reason="Completed")], deletionTimestamp=ago(seconds=1))
    assert pod_status(obj)[1] == "Completed"


def test_node_lost_pod_is_unknown() -> None:
    obj = pod(statuses=[running("nginx")], deletionTimestamp=ago(minutes=1))
    obj["status"]["reason"] = "NodeLost"
    assert pod_status(obj)[1] == "Unknown"
    del obj["metadata"]["deletionTimestamp"]
    assert pod_status(obj)[1] == "NodeLost"  # a running container leaves status.reason in place


def test_readiness_gates() -> None:
    obj = pod(
        statuses=[running("nginx")],
        conditions=[
            condition("Ready"),
            condition("example.com/lb-ready"),
            condition("example.com/feature", "False"),
            condition("example.com/feature"),  # only the first condition of a type counts
        ],
    )
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/lb-ready"},
        {"conditionType": "example.com/feature"},
        {"conditionType": "example.com/missing"},
    ]
    assert cells("Pod", obj)[8] == "1/3"


def test_pod_with_no_status_at_all() -> None:
    obj = {"metadata": {"name": "bare"}, "spec": {"containers": [container("a"), container("b")]}}
    assert cells("Pod", obj) == ["bare", "0/2", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]


# --- nodes -----------------------------------------------------------------------------------------


def node(
    name: str = "node-1",
    *,
    ready: str | None = "True",
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    conditions = [condition("MemoryPressure", "False"), condition("DiskPressure", "False")]
    if ready is not None:
        conditions.append(condition("Ready", ready))
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, age={"days": 12}, labels=labels or {"kubernetes.io/hostname": name}),
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": "192.168.1.21"},
                {"type": "InternalIP", "address": "fd00::21"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.6.31+rpt-rpi-v8",
                "containerRuntimeVersion": "podman://5.2.2",
            },
        },
    }
    if unschedulable:
        obj["spec"]["unschedulable"] = True
    return obj


def test_ready_node_prints_every_column() -> None:
    labels = {
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/worker": "",
        "kubernetes.io/role": "edge",
        "node-role.kubernetes.io/": "ignored",
    }
    assert cells("Node", node(labels=labels)) == [
        "node-1", "Ready", "control-plane,edge,worker", "12d", "v1.32.0", "192.168.1.21", "<none>",
        "Debian GNU/Linux 12 (bookworm)", "6.6.31+rpt-rpi-v8", "podman://5.2.2",
    ]


@pytest.mark.parametrize(
    ("ready", "unschedulable", "expected"),
    [
        ("True", False, "Ready"),
        ("False", False, "NotReady"),
        ("Unknown", False, "NotReady"),
        (None, False, "Unknown"),
        ("True", True, "Ready,SchedulingDisabled"),
        (None, True, "Unknown,SchedulingDisabled"),
    ],
)
def test_node_status(ready: str | None, unschedulable: bool, expected: str) -> None:
    assert cells("Node", node(ready=ready, unschedulable=unschedulable))[1] == expected


def test_node_without_roles_addresses_or_node_info() -> None:
    obj = {"metadata": meta("bare", age={"hours": 30}, labels={"kubernetes.io/role": ""}), "status": {}}
    assert cells("Node", obj) == [
        "bare", "Unknown", "<none>", "30h", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>",
    ]


def test_node_external_ip() -> None:
    obj = node()
    obj["status"]["addresses"].append({"type": "ExternalIP", "address": "203.0.113.9"})
    assert cells("Node", obj)[5:7] == ["192.168.1.21", "203.0.113.9"]


# --- namespaces, config maps, secrets, leases, other kinds ----------------------------------------


def test_namespace() -> None:
    active = {"metadata": meta("default", age={"days": 40}), "spec": {"finalizers": ["kubernetes"]},
              "status": {"phase": "Active"}}
    terminating = {"metadata": meta("old", deletionTimestamp=ago(seconds=5)), "status": {"phase": "Terminating"}}
    assert cells("Namespace", active) == ["default", "Active", "40d"]
    assert cells("Namespace", terminating) == ["old", "Terminating", "5m"]
    assert cells("Namespace", {"metadata": meta("fresh")}) == ["fresh", "Active", "5m"]


def test_config_map_counts_data_and_binary_data() -> None:
    obj = {"metadata": meta("settings"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AAE="}}
    assert cells("ConfigMap", obj) == ["settings", 3, "5m"]
    assert cells("ConfigMap", {"metadata": meta("empty")}) == ["empty", 0, "5m"]


def test_secret() -> None:
    tls = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "Yw==", "tls.key": "aw=="}}
    assert cells("Secret", tls) == ["tls", "kubernetes.io/tls", 2, "5m"]
    # stringData merges into data (shared keys count once); the type defaults to Opaque.
    mixed = {"metadata": meta("mixed"), "data": {"a": "MQ=="}, "stringData": {"a": "x", "b": "y"}}
    assert cells("Secret", mixed) == ["mixed", "Opaque", 2, "5m"]


def test_lease() -> None:
    lease = {
        "metadata": meta("kube-scheduler", age={"hours": 26}),
        "spec": {"holderIdentity": "node-1_7c9e", "leaseDurationSeconds": 15, "renewTime": ago(seconds=2)},
    }
    assert cells("Lease", lease) == ["kube-scheduler", "node-1_7c9e", "26h"]
    assert cells("Lease", {"metadata": meta("free"), "spec": {}}) == ["free", "", "5m"]


def test_kinds_without_a_printer_get_name_and_age() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta("w", age={"minutes": 3, "seconds": 5})}
    assert cells("Widget", obj) == ["w", "3m5s"]
    assert cells("PodTemplate", {"metadata": meta("default")}) == ["default", "5m"]


# --- workloads -------------------------------------------------------------------------------------


def template(*names_and_images: tuple[str, str], node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container(n, i) for n, i in names_and_images]}
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    return {"metadata": {"labels": {"app": "nginx"}}, "spec": spec}


def deployment(selector: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("nginx", age={"hours": 5, "minutes": 30}),
        "spec": {"selector": selector, "template": template(("nginx", "nginx:1.27"), ("log", "busybox")), **spec},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    }


def test_deployment_prints_every_column() -> None:
    obj = deployment({"matchLabels": {"app": "nginx"}}, replicas=3)
    assert cells("Deployment", obj) == ["nginx", "2/3", 3, 2, "5h30m", "nginx,log", "nginx:1.27,busybox", "app=nginx"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (
            {
                "matchLabels": {"tier": "web", "app": "nginx"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "canary"]},
                    {"key": "track", "operator": "NotIn", "values": ["beta"]},
                    {"key": "zone", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "app=nginx,env in (canary,prod),!legacy,tier=web,track notin (beta),zone",
        ),
        ({}, ""),
        (None, ""),
        ({"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}, "<invalid>"),
        ({"matchLabels": {"bad key!": "x"}}, "<invalid>"),
    ],
)
def test_deployment_selector(selector: Any, expected: str) -> None:
    assert cells("Deployment", deployment(selector, replicas=3))[7] == expected


def test_deployment_replicas_default_to_one() -> None:
    obj = deployment({"matchLabels": {"app": "nginx"}})
    obj["status"] = {}
    assert cells("Deployment", obj)[1:4] == ["0/1", 0, 0]
    assert cells("Deployment", deployment({"matchLabels": {"app": "nginx"}}, replicas=0))[1] == "2/0"


def test_replica_set() -> None:
    obj = {
        "metadata": meta("nginx-7c9f8d6b5", age={"days": 2, "hours": 3}),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx", "pod-template-hash": "7c9f8d6b5"}},
            "template": template(("nginx", "nginx:1.27")),
        },
        "status": {"replicas": 3, "readyReplicas": 1, "availableReplicas": 1},
    }
    assert cells("ReplicaSet", obj) == [
        "nginx-7c9f8d6b5", 3, 3, 1, "2d3h", "nginx", "nginx:1.27", "app=nginx,pod-template-hash=7c9f8d6b5",
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [({}, "<none>"), (None, "<none>"), ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "<error>")],
)
def test_replica_set_selector_placeholders(selector: Any, expected: str) -> None:
    obj = {"metadata": meta("rs"), "spec": {"selector": selector, "template": template()}, "status": {}}
    assert cells("ReplicaSet", obj) == ["rs", 1, 0, 0, "5m", "", "", expected]


def test_daemon_set() -> None:
    obj = {
        "metadata": meta("node-exporter", age={"days": 8}),
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": template(
                ("exporter", "prom/node-exporter:v1.8.2"),
                node_selector={"kubernetes.io/os": "linux", "edgek8s.io/class": "pi"},
            ),
        },
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
            "numberMisscheduled": 0,
        },
    }
    assert cells("DaemonSet", obj) == [
        "node-exporter", 3, 3, 2, 3, 2, "edgek8s.io/class=pi,kubernetes.io/os=linux", "8d",
        "exporter", "prom/node-exporter:v1.8.2", "app=node-exporter",
    ]
    del obj["spec"]["template"]["spec"]["nodeSelector"]
    assert cells("DaemonSet", obj)[6] == "<none>"


# --- services and endpoints ------------------------------------------------------------------------


def service(type_: str | None = "ClusterIP", **spec: Any) -> dict[str, Any]:
    full_spec: dict[str, Any] = {
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        "selector": {"app": "web"},
        **spec,
    }
    if type_ is not None:
        full_spec["type"] = type_
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": full_spec, "status": {}}


def test_cluster_ip_service() -> None:
    assert cells("Service", service()) == ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "5m", "app=web"]


def test_node_port_service_with_external_ips() -> None:
    obj = service(
        "NodePort",
        ports=[
            {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"name": "dns", "port": 53, "nodePort": 30053, "protocol": "UDP"},
            {"name": "metrics", "port": 9100, "protocol": "TCP"},
        ],
        externalIPs=["192.168.1.50", "192.168.1.51"],
        selector={"tier": "front", "app": "web"},
    )
    assert cells("Service", obj) == [
        "web", "NodePort", "10.96.0.10", "192.168.1.50,192.168.1.51", "80:30080/TCP,53:30053/UDP,9100/TCP", "5m",
        "app=web,tier=front",
    ]


def test_load_balancer_service() -> None:
    pending = service("LoadBalancer", ports=[{"port": 443, "nodePort": 31443, "protocol": "TCP"}])
    assert cells("Service", pending)[3:5] == ["<pending>", "443:31443/TCP"]
    assigned = service("LoadBalancer", externalIPs=["192.168.1.60"])
    assigned["status"] = {
        "loadBalancer": {
            "ingress": [{"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}, {}]
        }
    }
    # Wide: not clipped to 16 characters; IP or hostname per ingress, sorted, then spec.externalIPs.
    assert cells("Service", assigned)[3] == "203.0.113.10,203.0.113.20,lb.example.com,192.168.1.60"


def test_external_name_and_headless_services() -> None:
    external = service("ExternalName", externalName="db.example.com", clusterIP="", clusterIPs=[], ports=[])
    external["spec"].pop("selector")
    assert cells("Service", external) == ["web", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"]
    headless = service(clusterIP="None", clusterIPs=["None"])
    assert cells("Service", headless)[2:4] == ["None", "<none>"]


def test_service_defaults_and_cluster_ip_fallback() -> None:
    obj = service(None, clusterIPs=[], ports=[{"port": 8080}])
    assert cells("Service", obj)[1:5] == ["ClusterIP", "10.96.0.10", "<none>", "8080/TCP"]
    obj["spec"]["type"] = "Bogus"
    assert cells("Service", obj)[1:4] == ["Bogus", "10.96.0.10", "<unknown>"]


def endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("web"), "subsets": list(subsets)}


def addresses(*ips: str) -> list[dict[str, Any]]:
    return [{"ip": ip, "nodeName": "node-1"} for ip in ips]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": meta("web")}, "<none>"),
        (endpoints(), "<none>"),
        (endpoints({"notReadyAddresses": addresses("10.244.1.9"), "ports": [{"port": 80}]}), ""),
        (endpoints({"addresses": addresses("10.244.1.7", "10.244.2.3"), "ports": [{"port": 8080}]}),
         "10.244.1.7:8080,10.244.2.3:8080"),
        (endpoints({"addresses": addresses("10.0.0.1", "10.0.0.2", "10.0.0.3")}), "10.0.0.1,10.0.0.2,10.0.0.3"),
        (endpoints({"addresses": addresses(*(f"10.0.0.{i}" for i in range(1, 6))), "ports": [{"port": 80}]}),
         "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."),
        (endpoints({"addresses": addresses("10.0.0.1", "10.0.0.2"), "ports": [{"port": 80}, {"port": 443}]}),
         "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."),
        (endpoints({"addresses": addresses("10.0.0.1"), "ports": [{"port": 80}]},
                   {"addresses": addresses("10.0.1.1", "10.0.1.2", "10.0.1.3"), "ports": [{"port": 80}]},
                   {"addresses": addresses("10.0.2.1")}),
         "10.0.0.1:80,10.0.1.1:80,10.0.1.2:80 + 2 more..."),
        (endpoints({"addresses": addresses("fd00::7"), "ports": [{"port": 53, "protocol": "UDP"}]}), "[fd00::7]:53"),
    ],
)
def test_endpoints(obj: dict[str, Any], expected: str) -> None:
    assert cells("Endpoints", obj) == ["web", expected, "5m"]


# --- events ----------------------------------------------------------------------------------------


def event(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("web-1.17f3a6b2c1d0e9f8", age={"minutes": 2}),
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "uid-web-1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/web-1 to node-1\n",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": ago(minutes=2),
        "lastTimestamp": ago(minutes=2),
        "count": 1,
        "type": "Normal",
    }
    obj.update(fields)
    return obj


def test_event_prints_every_column() -> None:
    assert cells("Event", event()) == [
        "2m", "Normal", "Scheduled", "pod/web-1", "", "default-scheduler",
        "Successfully assigned default/web-1 to node-1", "2m", 1, "web-1.17f3a6b2c1d0e9f8",
    ]


def test_repeated_event_with_subobject_and_host() -> None:
    obj = event(
        type="Warning",
        reason="BackOff",
        message="Back-off restarting failed container app in pod web-1_default(uid-web-1)",
        involvedObject={"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
        source={"component": "kubelet", "host": "node-1"},
        firstTimestamp=ago(minutes=12),
        lastTimestamp=ago(seconds=40),
        count=17,
    )
    assert cells("Event", obj) == [
        "40s", "Warning", "BackOff", "pod/web-1", "spec.containers{app}", "kubelet, node-1",
        "Back-off restarting failed container app in pod web-1_default(uid-web-1)", "12m", 17,
        "web-1.17f3a6b2c1d0e9f8",
    ]


def test_events_api_style_event_with_series() -> None:
    obj = event(
        source={},
        firstTimestamp=None,
        lastTimestamp=None,
        count=0,
        eventTime="2025-06-01T11:50:00.000000Z",
        reportingComponent="edgek8s-controller-manager",
        reportingInstance="node-2",
        series={"count": 4, "lastObservedTime": "2025-06-01T11:59:30.500000Z"},
        involvedObject={"kind": "Node"},
    )
    assert cells("Event", obj)[:9] == [
        "29s", "Normal", "Scheduled", "node", "", "edgek8s-controller-manager, node-2",
        "Successfully assigned default/web-1 to node-1", "10m", 4,
    ]


def test_singleton_event_without_timestamps() -> None:
    obj = event(firstTimestamp=None, lastTimestamp=None, count=0)
    assert cells("Event", obj)[0] == "<unknown>"
    assert cells("Event", obj)[7:9] == ["<unknown>", 1]
    only_first = event(lastTimestamp=None, firstTimestamp=ago(hours=3))
    assert cells("Event", only_first)[0] == "3h"  # Last Seen falls back to First Seen


# --- the Table object ------------------------------------------------------------------------------


def test_list_table_shape_with_partial_object_metadata() -> None:
    objects = [
        pod("a", labels={"app": "web"}, namespace="default", statuses=[running("nginx")]),
        pod("b", namespace="default", statuses=[running("nginx")]),
    ]
    table = table_for_list("Pod", objects, now=NOW, resource_version="111")
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "111"}
    assert table["columnDefinitions"] == column_definitions("Pod")
    assert [row["cells"][0] for row in table["rows"]] == ["a", "b"]
    first = table["rows"][0]
    assert list(first) == ["cells", "object"]
    assert first["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": objects[0]["metadata"],
    }
    assert first["object"]["metadata"]["labels"] == {"app": "web"}
    json.dumps(table)


def test_list_metadata_continue_and_remaining() -> None:
    table = table_for_list(
        "ConfigMap", [], now=NOW, resource_version="7", continue_token="eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", remaining=12
    )
    assert table["metadata"] == {
        "resourceVersion": "7", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "remainingItemCount": 12,
    }
    assert table["rows"] == []
    assert table_for_list("ConfigMap", [], now=NOW, remaining=0)["metadata"] == {"remainingItemCount": 0}


@pytest.mark.parametrize("policy", ["Metadata", ""])
def test_include_object_metadata_is_the_default(policy: str) -> None:
    obj = service()
    row = table_for_list("Service", [obj], now=NOW, include_object=policy)["rows"][0]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"] == obj["metadata"]


def test_include_object_object_and_none() -> None:
    obj = service()
    with_object = table_for_list("Service", [obj], now=NOW, include_object="Object")["rows"][0]
    assert with_object["object"] == obj
    without = table_for_list("Service", [obj], now=NOW, include_object="None")["rows"][0]
    assert list(without) == ["cells"]
    assert table_for_object("Service", obj, now=NOW, include_object="None")["rows"][0] == without


@pytest.mark.parametrize("policy", ["metadata", "All", "object"])
def test_unknown_include_object_is_a_bad_request(policy: str) -> None:
    with pytest.raises(BadRequest) as caught:
        table_for_list("Pod", [], now=NOW, include_object=policy)
    assert caught.value.code == 400
    assert caught.value.message == (
        f'Unable to convert to Table as requested: includeObject: Invalid value: "{policy}": '
        "must be 'Metadata', 'Object', 'None', or empty"
    )
    with pytest.raises(BadRequest):
        table_for_object("Pod", pod(), now=NOW, include_object=policy)


def test_single_object_table_takes_the_object_resource_version() -> None:
    obj = node()
    table = table_for_object("Node", obj, now=NOW)
    assert table["metadata"] == {"resourceVersion": "42"}
    assert len(table["rows"]) == 1
    assert table["rows"][0]["object"]["metadata"]["name"] == "node-1"
    del obj["metadata"]["resourceVersion"]
    assert table_for_object("Node", obj, now=NOW)["metadata"] == {}


def test_watch_event_tables_may_leave_out_column_definitions() -> None:
    table = table_for_object("Pod", pod(), now=NOW, headers=False)
    assert table["columnDefinitions"] is None
    assert json.loads(json.dumps(table))["columnDefinitions"] is None
    assert len(table["rows"][0]["cells"]) == len(column_definitions("Pod"))


KINDS = ["Pod", "Node", "Namespace", "Deployment", "ReplicaSet", "DaemonSet", "Service", "Endpoints",
         "ConfigMap", "Secret", "Event", "Lease", "Widget"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": {"name": "x"}},
        {"metadata": "junk", "spec": [], "status": "junk", "subsets": 3, "data": None},
        {"metadata": {"name": "x"}, "spec": {"containers": "no", "ports": [1], "selector": "app=x"},
         "status": {"conditions": [None, {"type": 5}], "containerStatuses": [{"state": None}]}},
    ],
    ids=["empty", "name-only", "mistyped", "mistyped-nested"],
)
def test_every_kind_prints_a_full_row_from_malformed_objects(kind: str, obj: dict[str, Any]) -> None:
    row = cells(kind, obj)
    assert all(isinstance(cell, str | int) and not isinstance(cell, bool) for cell in row)


# --- batch and discovery ---------------------------------------------------------------------------


def job(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("pi", age={"minutes": 10}),
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                     "template": template(("pi", "perl:5.34")), **spec},
            "status": status}


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"completions": 3, "parallelism": 1}, {"startTime": ago(minutes=2), "succeeded": 1},
         ["Running", "1/3", "2m"]),
        ({"completions": 1}, {"startTime": ago(minutes=9), "completionTime": ago(minutes=8, seconds=30),
                              "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
         ["Complete", "1/1", "30s"]),
        ({"parallelism": 3}, {}, ["Running", "0/1 of 3", ""]),
        ({"parallelism": 1}, {"conditions": [{"type": "Suspended", "status": "True"}]}, ["Suspended", "0/1", ""]),
        ({"completions": 2}, {"conditions": [{"type": "FailureTarget", "status": "True"},
                                             {"type": "Failed", "status": "True"}]}, ["Failed", "0/2", ""]),
        ({"completions": 2}, {"conditions": [{"type": "FailureTarget", "status": "True"}]},
         ["FailureTarget", "0/2", ""]),
    ],
)
def test_job(spec: dict[str, Any], status: dict[str, Any], expected: list[str]) -> None:
    assert cells("Job", job(status, **spec)) == [
        "pi", *expected, "10m", "pi", "perl:5.34", "batch.kubernetes.io/controller-uid=u1"]
    assert columns("Job")[:5] == [("Name", 0), ("Status", 0), ("Completions", 0), ("Duration", 0), ("Age", 0)]


def test_job_terminating() -> None:
    obj = job({})
    obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert cells("Job", obj)[1] == "Terminating"


def test_cron_job() -> None:
    obj = {"metadata": meta("backup", age={"days": 2}),
           "spec": {"schedule": "*/5 * * * *", "suspend": False,
                    "jobTemplate": {"spec": {"template": template(("b", "busybox"))}}},
           "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(minutes=3)}}
    assert cells("CronJob", obj) == ["backup", "*/5 * * * *", "<none>", "False", 1, "3m", "2d", "b", "busybox",
                                     "<none>"]
    obj["spec"].update(timeZone="Europe/Paris", suspend=True)
    obj["status"] = {}
    assert cells("CronJob", obj)[2:6] == ["Europe/Paris", "True", 0, "<none>"]
    assert [c for c, _ in columns("CronJob")[:7]] == ["Name", "Schedule", "Timezone", "Suspend", "Active",
                                                      "Last Schedule", "Age"]


@pytest.mark.parametrize(
    ("ports", "addresses", "expected_ports", "expected_endpoints"),
    [
        ([{"name": "http", "port": 80}], ["10.1.0.1", "10.1.0.2"], "80", "10.1.0.1,10.1.0.2"),
        ([], [], "<unset>", "<unset>"),
        ([{"name": "a", "port": 1}, {"name": "b"}, {"port": 3}, {"port": 4}], [f"10.0.0.{i}" for i in range(5)],
         "1,b,3 + 1 more...", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."),
        ([{}], ["fd00::1"], "*", "fd00::1"),
    ],
)
def test_endpoint_slice(ports: list[dict[str, Any]], addresses: list[str], expected_ports: str,
                        expected_endpoints: str) -> None:
    obj = {"metadata": meta("web-abcde"), "addressType": "IPv4", "ports": ports,
           "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}
    assert cells("EndpointSlice", obj) == ["web-abcde", "IPv4", expected_ports, expected_endpoints, "5m"]
