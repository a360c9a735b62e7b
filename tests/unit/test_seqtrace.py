"""bench seqtrace: a write is followed hop by hop across the masters' records, stage by stage."""

from __future__ import annotations

from typing import Any

from bench.seqtrace import FORWARDED, LAST, MISSED, Write, _Index, follow

ADDRESSES = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
LEADER = 2


def forwarded_traces(ack_from_proposer_first: bool) -> list[list[tuple[Any, ...]]]:
    """Proposer 0, other follower 1, leader 2; one record per hop, 10 µs apart, plus noise records."""
    p: list[tuple[Any, ...]] = []
    o: list[tuple[Any, ...]] = []
    leader: list[tuple[Any, ...]] = [(5_000, "flush", 10)]  # a heartbeat before the write: ignored
    t = 100_000

    def at(trace: list[tuple[Any, ...]], event: str, step: int = 10_000) -> None:
        nonlocal t
        t += step
        trace.append((t, event, 0))

    for trace, event in [(p, "http_start"), (p, "propose"), (p, "drain"), (p, "flush"), (leader, "recv_fwd"),
                         (leader, "drain"), (leader, "flush")]:
        at(trace, event)
    fast, slow = (p, o) if ack_from_proposer_first else (o, p)
    fast_index, slow_index = (0, 1) if ack_from_proposer_first else (1, 0)
    at(slow, "recv_ae_entries")
    at(fast, "recv_ae_entries")
    at(fast, "fsync_done")
    at(fast, "ack_send")
    at(fast, "flush")
    at(leader, f"recv_ack@{ADDRESSES[fast_index]}")
    at(leader, "apply_start")
    at(slow, "fsync_done", 1)
    at(slow, "ack_send", 1)
    at(slow, "flush", 1)
    at(leader, f"recv_ack@{ADDRESSES[slow_index]}", 1)
    at(leader, "flush", 9_996)
    for event in ["recv_ae_commit", "apply_start", "handoff_post", "loop_run", "resp_written"]:
        at(p, event)
    return [p, o, leader]


def test_every_stage_of_a_forwarded_write_is_the_gap_to_its_hop() -> None:
    for proposer_first in (True, False):
        traces = [_Index(t) for t in forwarded_traces(proposer_first)]
        write = Write(proposer=0, start=100_000, end=1_000_000)
        assert follow(write, FORWARDED, traces, LEADER, ADDRESSES)
        # The stages add up to the write; every hop is 10 µs after the one before, through the follower
        # the leader heard from first (the slower one's hops are not on the path).
        last_hop = max(r[0] for t in forwarded_traces(proposer_first) for r in t)
        assert write.stages.pop(LAST) == 1_000_000 - last_hop
        assert sum(write.stages.values()) == last_hop - 100_000
        assert set(write.stages) == {label for label, _r, _e in FORWARDED}
        assert {label for label, gap in write.stages.items() if gap != 10_000} == {
            "AppendEntries -> follower receives"}, write.stages
        assert write.stages["AppendEntries -> follower receives"] == 20_000  # the slower follower got it first


def test_a_write_with_a_missing_hop_is_counted_not_followed() -> None:
    trace = forwarded_traces(True)
    trace[LEADER] = [r for r in trace[LEADER] if r[1] != "recv_fwd"]
    MISSED.clear()
    assert not follow(Write(0, 100_000, 1_000_000), FORWARDED, [_Index(t) for t in trace], LEADER, ADDRESSES)
    assert MISSED == {"forward -> leader receives": 1}
