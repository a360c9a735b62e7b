"""PodTopologySpread: ``spec.topologySpreadConstraints`` (upstream's plugin of that name).

For each constraint, a *domain* is a value of its ``topologyKey`` on an eligible node: one that has
every key of the pod's constraints (of that kind: hard or soft), satisfies the pod's nodeSelector and
required node affinity unless ``nodeAffinityPolicy: Ignore``, and, with ``nodeTaintsPolicy: Honor``,
has no untolerated NoSchedule/NoExecute taint. A domain's count is the number of pods on its nodes in
the pod's namespace that the constraint's ``labelSelector`` (plus ``matchLabelKeys``) selects,
terminating pods excluded.

- filter (``DoNotSchedule``): a node without the key is out (``missing required label``); otherwise
  ``count(its domain) + (1 if the selector selects the pod itself) - min count over domains`` must be at
  most ``maxSkew``; the minimum is 0 while there are fewer domains than ``minDomains``.
- score (``ScheduleAnyway``): per node, the sum over constraints of
  ``count * log(domains + 2) + maxSkew - 1`` (fewer is better), normalized as upstream's
  ``NormalizeScore``; nodes without every key get 0. Upstream counts the domains of the filtered
  nodes for the log weight; this counts those of all eligible nodes (the same unless a filter
  empties a whole domain).

``kubernetes.io/hostname`` falls back to the node's name, as in InterPodAffinity.
Cost: nothing for a pod without constraints; for one with them, O(nodes) plus a recount of the nodes
changed since the last pod with the same selector (``NodeInfo.count_matching``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from edgek8s.scheduler.framework import MAX_SCORE, Check, Scorer
from edgek8s.scheduler.plugins.inter_pod_affinity import topology_value
from edgek8s.scheduler.podinfo import PodInfo, SpreadConstraint
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL_REASON = f"{REASON} (missing required label)"
_IGNORED = -1


def _domain_counts(pod: PodInfo, snapshot: Snapshot, constraints: Sequence[SpreadConstraint]) -> list[dict[str, int]]:
    """Per constraint: domain value -> matching pods, over the eligible nodes (domains with none: 0)."""
    counts: list[dict[str, int]] = [{} for _ in constraints]
    matchers = [functools.partial(c.selects, namespace=pod.namespace) for c in constraints]
    keys = [c.cache_key for c in constraints]  # a str: its hash is computed once
    for node in snapshot.nodes():
        values = [topology_value(node, c.topology_key) for c in constraints]
        if None in values:
            continue
        affine: bool | None = None
        tolerated: bool | None = None
        for i, constraint in enumerate(constraints):
            if constraint.honor_node_affinity:
                if affine is None:
                    affine = pod.fits_node_affinity(node.labels, node.name)
                if not affine:
                    continue
            if constraint.honor_taints:
                if tolerated is None:
                    tolerated = pod.untolerated(node.taints) is None
                if not tolerated:
                    continue
            value = values[i]
            assert value is not None
            domains = counts[i]
            domains[value] = domains.get(value, 0) + node.count_matching(keys[i], matchers[i])
    return counts


class PodTopologySpread:
    name = "PodTopologySpread"
    weight = 2

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        hard = [c for c in pod.spread if c.hard]
        if not hard:
            return None
        counts = _domain_counts(pod, snapshot, hard)
        rules = []
        for constraint, domains in zip(hard, counts, strict=True):
            least = min(domains.values(), default=0)
            if len(domains) < constraint.min_domains:
                least = 0
            own = 1 if constraint.selects(pod, pod.namespace) else 0
            rules.append((constraint.topology_key, constraint.max_skew, domains, own - least))

        def check(node: NodeInfo) -> str | None:
            for key, max_skew, domains, offset in rules:
                value = topology_value(node, key)
                if value is None:
                    return MISSING_LABEL_REASON
                if domains.get(value, 0) + offset > max_skew:
                    return REASON
            return None

        return check

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None:
        soft = [c for c in pod.spread if not c.hard]
        if not soft:
            return None
        counts = _domain_counts(pod, snapshot, soft)
        weights = [math.log(len(domains) + 2) for domains in counts]

        def score(node: NodeInfo) -> int:
            total = 0.0
            for constraint, domains, weight in zip(soft, counts, weights, strict=True):
                value = topology_value(node, constraint.topology_key)
                if value is None:
                    return _IGNORED
                total += domains.get(value, 0) * weight + constraint.max_skew - 1
            return round(total)

        return score

    def normalize(self, scores: list[int]) -> list[int]:
        valid = [s for s in scores if s != _IGNORED]
        if not valid:
            return [0] * len(scores)
        low, high = min(valid), max(valid)
        if high == 0:
            return [0 if s == _IGNORED else MAX_SCORE for s in scores]
        return [0 if s == _IGNORED else MAX_SCORE * (high + low - s) // high for s in scores]
