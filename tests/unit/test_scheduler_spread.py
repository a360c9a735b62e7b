"""PodTopologySpread on its own and in the default framework: skew filter, minDomains, node
inclusion policies, namespaces, the ScheduleAnyway score, and parsing errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edgek8s.scheduler.plugins import default_framework
from edgek8s.scheduler.plugins.pod_topology_spread import MISSING_LABEL_REASON, REASON, PodTopologySpread
from edgek8s.scheduler.podinfo import pod_info
from tests.support.objects import make_node, make_pod, node_taint
from tests.unit.test_scheduler_plugins import snapshot_of

ZONE = "topology.kubernetes.io/zone"


def spread(key: str = ZONE, *, skew: int = 1, hard: bool = True, **extra: Any) -> dict[str, Any]:
    return {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "web"}}, **extra}


def web(name: str, *constraints: dict[str, Any], node: str = "", **kwargs: Any) -> dict[str, Any]:
    labels = kwargs.pop("labels", {"app": "web"})
    pod = make_pod(name, node_name=node, labels=labels, **kwargs)
    if constraints:
        pod["spec"]["topologySpreadConstraints"] = list(constraints)
    return pod


def zoned(name: str, zone: str | None, **kwargs: Any) -> dict[str, Any]:
    return make_node(name, labels={ZONE: zone} if zone else {}, **kwargs)


def verdicts(pod: dict[str, Any], nodes: list[dict[str, Any]], placed: list[dict[str, Any]]) -> dict[str, str | None]:
    snapshot = snapshot_of(nodes, placed)
    check = PodTopologySpread().check_for(pod_info(pod), snapshot)
    assert check is not None
    return {n.name: check(n) for n in snapshot.nodes()}


THREE = [zoned("n1", "a"), zoned("n2", "a"), zoned("n3", "b")]


def test_skew_filter_counts_per_zone_and_the_pod_itself() -> None:
    placed = [web("p1", node="n1"), web("p2", node="n2")]
    assert verdicts(web("new", spread()), THREE, placed) == {"n1": REASON, "n2": REASON, "n3": None}
    # maxSkew 2 allows a third in zone a: 2 + 1 - 0 = 3 > 2 still; 1 placed: 1 + 1 - 0 = 2 fits.
    assert verdicts(web("new", spread(skew=2)), THREE, placed[:1]) == {"n1": None, "n2": None, "n3": None}


def test_a_pod_its_selector_does_not_select_adds_nothing() -> None:
    placed = [web("p1", node="n1")]
    other = web("new", spread(), labels={"app": "other"})
    assert verdicts(other, THREE, placed) == {"n1": None, "n2": None, "n3": None}


def test_node_without_the_key_is_out() -> None:
    nodes = [*THREE, zoned("bare", None)]
    assert verdicts(web("new", spread()), nodes, [])["bare"] == MISSING_LABEL_REASON


def test_min_domains_counts_missing_domains_as_empty() -> None:
    placed = [web("p1", node="n1"), web("p3", node="n3")]
    assert verdicts(web("new", spread()), THREE, placed) == {"n1": None, "n2": None, "n3": None}
    # Three zones wanted, two exist: the global minimum is taken as 0, so no zone may reach 2.
    assert verdicts(web("new", spread(minDomains=3)), THREE, placed) == {"n1": REASON, "n2": REASON, "n3": REASON}


def test_other_namespaces_other_labels_and_terminating_pods_do_not_count() -> None:
    gone = web("p3", node="n1")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    placed = [web("p1", node="n1", namespace="elsewhere"), web("p2", node="n1", labels={"app": "db"}), gone]
    assert verdicts(web("new", spread()), THREE, placed) == {"n1": None, "n2": None, "n3": None}


def test_node_affinity_policy_limits_the_domains() -> None:
    nodes = [zoned("n1", "a", arch="arm64"), zoned("n3", "b", arch="amd64")]
    placed = [web("p1", node="n1")]
    arm = {"nodeSelector": {"kubernetes.io/arch": "arm64"}}
    pod = web("new", spread())
    pod["spec"].update(arm)
    # Honor (default): zone b is not a domain for an arm64-only pod, so zone a's minimum is its own 1.
    assert verdicts(pod, nodes, placed)["n1"] is None
    pod["spec"]["topologySpreadConstraints"] = [spread(nodeAffinityPolicy="Ignore")]
    assert verdicts(pod, nodes, placed)["n1"] == REASON


def test_node_taints_policy_honor_drops_tainted_domains() -> None:
    nodes = [zoned("n1", "a"), zoned("n3", "b", taints=[node_taint("dedicated")])]
    placed = [web("p1", node="n1")]
    assert verdicts(web("new", spread()), nodes, placed)["n1"] == REASON  # Ignore (default): b counts, empty
    assert verdicts(web("new", spread(nodeTaintsPolicy="Honor")), nodes, placed)["n1"] is None


def test_match_label_keys_narrow_the_selector() -> None:
    placed = [web("p1", node="n1", labels={"app": "web", "rev": "1"})]
    pod = web("new", spread(matchLabelKeys=["rev"]), labels={"app": "web", "rev": "2"})
    assert verdicts(pod, THREE, placed) == {"n1": None, "n2": None, "n3": None}


def test_schedule_anyway_scores_the_emptier_zone_higher() -> None:
    nodes = [*THREE, zoned("bare", None)]
    placed = [web("p1", node="n1"), web("p2", node="n1")]
    snapshot = snapshot_of(nodes, placed)
    plugin = PodTopologySpread()
    pod = pod_info(web("new", spread(hard=False)))
    assert plugin.check_for(pod, snapshot) is None
    scorer = plugin.scorer_for(pod, snapshot)
    assert scorer is not None
    scores = dict(zip([n.name for n in snapshot.nodes()], plugin.normalize([scorer(n) for n in snapshot.nodes()]),
                      strict=True))
    assert scores["bare"] == 0 and scores["n3"] == 100 and scores["n1"] == scores["n2"] < scores["n3"]


def test_invalid_constraints_make_the_pod_unschedulable_with_a_reason() -> None:
    for bad in (spread(skew=0), {**spread(), "whenUnsatisfiable": "Sometimes"}, {"maxSkew": 1},
                spread(hard=False, minDomains=2), spread(nodeAffinityPolicy="Maybe")):
        assert "topology" in pod_info(web("new", bad)).invalid


def test_default_framework_spreads_replicas_evenly_over_zones() -> None:
    nodes = [zoned("a1", "a"), zoned("a2", "a"), zoned("a3", "a"), zoned("b1", "b"), zoned("c1", "c")]
    snapshot = snapshot_of(nodes, [])
    framework = default_framework()
    zones: Counter[str] = Counter()
    for i in range(9):
        pod = pod_info(web(f"r{i}", spread(), spread("kubernetes.io/hostname", skew=3, hard=False)))
        decision = framework.schedule(pod, snapshot)
        assert decision.node is not None, decision.message()
        snapshot.assume(pod, decision.node)
        zones[decision.node[0]] += 1
    assert zones == {"a": 3, "b": 3, "c": 3}
    # Zone c only, node affinity honoured: c is the one domain, so it may take another (3 + 1 - 3).
    only_c = pod_info(web("c-only", spread(), node_selector={ZONE: "c"}))
    assert framework.schedule(only_c, snapshot).node == "c1"
    snapshot.assume(only_c, "c1")
    # Counting every zone (policy Ignore), c now has 4 against a minimum of 3: a fifth there is skew 2.
    blocked = framework.schedule(pod_info(web("x", spread(nodeAffinityPolicy="Ignore"), node_selector={ZONE: "c"})),
                                 snapshot)
    assert blocked.node is None and REASON in blocked.message()
