"""The scheduling framework: ``Framework.schedule(pod, snapshot)`` -> ``Decision``, a pure function.

    prepare       each plugin looks at the pod once and returns a per-node check/scorer,
                  or None when it has nothing to say about this pod (upstream's PreFilter "Skip")
    filter        every node in name order; the first failing check gives the node's reason
    score         each scorer over the feasible nodes -> raw scores
    normalize     per plugin, to 0..MAX_SCORE, then times the plugin's weight, summed per node
    pick          the highest total; ties broken by a choice seeded with (seed, pod uid), so the same
                  pod on the same snapshot always lands on the same node, yet equal nodes share pods

Upstream's framework (pkg/scheduler/framework) has more extension points (reserve, permit,
pre-bind); binding lives in ``scheduler.loop`` as a write with preconditions.

Pure: reads the snapshot, never changes it; no clock, no I/O.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

MAX_SCORE = 100

Check = Callable[[NodeInfo], str | None]  # None: the node fits; otherwise the reason it does not
Scorer = Callable[[NodeInfo], int]


class FilterPlugin(Protocol):
    name: str

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None: ...


class ScorePlugin(Protocol):
    name: str
    weight: int

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None: ...

    def normalize(self, scores: list[int]) -> list[int]:
        """Raw scores of the feasible nodes -> 0..MAX_SCORE each."""
        ...


def normalize_by_max(scores: list[int], *, reverse: bool) -> list[int]:
    """Upstream's ``DefaultNormalizeScore``: scale so the highest raw score is MAX_SCORE (or, with
    ``reverse``, so the lowest raw score gets MAX_SCORE)."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_SCORE if reverse else 0 for _ in scores]
    if reverse:
        return [MAX_SCORE - MAX_SCORE * s // top for s in scores]
    return [MAX_SCORE * s // top for s in scores]


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None
    nodes: int  # how many nodes were considered
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> number of nodes it ruled out

    def message(self) -> str:
        """Upstream's FitError text: ``0/3 nodes are available: 1 Insufficient cpu, 2 ...``."""
        parts = sorted(f"{count} {reason}" for reason, count in self.reasons.items())
        return f"0/{self.nodes} nodes are available: {', '.join(parts)}." if parts else \
            f"0/{self.nodes} nodes are available."


class Framework:
    def __init__(self, filters: Sequence[FilterPlugin], scores: Sequence[ScorePlugin], *, seed: int = 0) -> None:
        self.filters = tuple(filters)
        self.scores = tuple(scores)
        self.seed = seed

    def schedule(self, pod: PodInfo, snapshot: Snapshot) -> Decision:
        nodes = snapshot.nodes()
        if pod.invalid:
            return Decision(None, len(nodes), Counter({pod.invalid: len(nodes)}))
        checks = self.checks_for(pod, snapshot)
        feasible: list[NodeInfo] = []
        reasons: Counter[str] = Counter()
        for node in nodes:
            for check in checks:
                reason = check(node)
                if reason is not None:
                    reasons[reason] += 1
                    break
            else:
                feasible.append(node)
        if not feasible:
            return Decision(None, len(nodes), reasons)
        if len(feasible) == 1:
            return Decision(feasible[0].name, len(nodes), reasons)
        totals = self._score(pod, snapshot, feasible)
        best = max(totals)
        tied = [i for i, total in enumerate(totals) if total == best]
        chosen = tied[0] if len(tied) == 1 else random.Random(f"{self.seed}/{pod.uid}").choice(tied)
        return Decision(feasible[chosen].name, len(nodes), reasons)

    def checks_for(self, pod: PodInfo, snapshot: Snapshot) -> list[Check]:
        """The filters that have something to say about ``pod``, prepared once for a cycle."""
        return [check for plugin in self.filters if (check := plugin.check_for(pod, snapshot)) is not None]

    def _score(self, pod: PodInfo, snapshot: Snapshot, feasible: list[NodeInfo]) -> list[int]:
        totals = [0] * len(feasible)
        for plugin in self.scores:
            scorer = plugin.scorer_for(pod, snapshot)
            if scorer is None:
                continue
            weight = plugin.weight
            normalized = plugin.normalize([scorer(node) for node in feasible])
            for i, score in enumerate(normalized):
                totals[i] += weight * score
        return totals
