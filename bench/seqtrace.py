"""The `seqtrace` benchmark: where one sequential write's time goes, stage by stage, robust to load.

Starts the `bench store` cluster (3 masters, durability on) with every master run through
``bench.seqtrace_master`` (timestamps at each hop of a write, in-process), sends N sequential 1 KiB
ConfigMap creates over HTTPS round robin over the masters (like `bench store`'s 1-client phase), then
collects the masters' records. CLOCK_MONOTONIC is shared by every process, so each write is followed
hop by hop: from the client's send to the proposing master's HTTP handler, its tick thread, the
leader, the follower whose acknowledgement came first (receive, fdatasync, acknowledgement), the
leader's commit, the proposer's learning of it, its apply, the hand-off to its loop and the response.

Each stage's time is the gap between one hop and the first matching hop after it, so a stage that
waits (for the GIL, a CPU, a poll timeout) shows up in that stage alone, whatever the load does to the
others. Prints p50/p99/max per stage for forwarded writes (proposer is a follower) and for writes
proposed on the leader, the mean of each stage over the slowest 5% of writes (what makes the tail),
and one JSON line. Wall-clock totals stay noisy on a loaded machine; compare stages, not totals.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.edgek8s_cluster import EdgeCluster
from bench.load import make_session, send_once
from bench.stats import percentile
from bench.store import value_string

Trace = list[tuple[Any, ...]]  # (stamp ns, event, value[, thread id, cpu ns, run-queue ns])

# (stage label, role, event): the stage ends at the first `event` on `role` after the previous hop.
# Roles: P proposer, L leader, F the follower whose acknowledgement the leader received first.
_FRONT = [
    ("client -> HTTP handler (TLS, HTTP parse)", "P", "http_start"),
    ("handler -> propose (JSON, registry)", "P", "propose"),
    ("propose -> tick thread drains queue", "P", "drain"),
]
_APPEND = [("append -> AppendEntries sent", "L", "flush")]
_REPLICATE = [
    ("AppendEntries -> follower receives", "F", "recv_ae_entries"),
    ("follower receive -> fdatasync done", "F", "fsync_done"),
    ("fdatasync -> acknowledgement queued", "F", "ack_send"),
    ("queued -> acknowledgement sent", "F", "flush"),
    ("acknowledgement -> leader receives", "L", "recv_ack"),
    ("leader receives ack -> commit (apply start)", "L", "apply_start"),
]
_BACK = [
    ("apply -> hand-off to loop", "P", "handoff_post"),
    ("hand-off -> loop runs it", "P", "loop_run"),
    ("loop -> response written", "P", "resp_written"),
]
FORWARDED = [
    *_FRONT,
    ("drain -> forward sent", "P", "flush"),
    ("forward -> leader receives", "L", "recv_fwd"),
    ("leader receives -> appends (drain)", "L", "drain"),
    *_APPEND,
    *_REPLICATE,
    ("commit -> commit index sent", "L", "flush"),
    ("commit index -> proposer receives", "P", "recv_ae_commit"),
    ("proposer receives -> apply start", "P", "apply_start"),
    *_BACK,
]
LOCAL = [*_FRONT, *_APPEND, *_REPLICATE, *_BACK]
LAST = "response -> client has it"
MISSED: dict[str, int] = {}  # stage label -> writes whose hop at the end of it was not found


class _Index:
    """One master's records, searchable by event: the first record of a kind at or after a time."""

    def __init__(self, trace: Trace) -> None:
        self.records = sorted(trace)
        self.by_event: dict[str, list[int]] = {}  # event -> positions in records
        self.by_thread: dict[int, list[int]] = {}  # thread id -> stamps (with --sched)
        for position, record in enumerate(self.records):
            self.by_event.setdefault(record[1], []).append(position)
            if len(record) == 6:
                self.by_thread.setdefault(record[3], []).append(record[0])
        self.stamps = {event: [self.records[p][0] for p in ps] for event, ps in self.by_event.items()}
        self.sched_of = {(r[3], r[0]): (r[4], r[5]) for r in self.records if len(r) == 6}

    def first(self, event: str, after: int, before: int) -> int | None:
        found = self.first_record(event, after, before)
        return None if found is None else int(found[0])

    def first_record(self, event: str, after: int, before: int) -> tuple[Any, ...] | None:
        stamps = self.stamps.get(event, [])
        i = bisect.bisect_left(stamps, after)
        if i < len(stamps) and stamps[i] <= before:
            return self.records[self.by_event[event][i]]
        return None

    def split(self, record: tuple[Any, ...], start: int) -> tuple[int, int, int] | None:
        """(CPU, run queue, rest) of the recording thread over the stage from ``start`` to ``record``.

        Measured since the thread's last record at or before ``start`` (or its previous record): the rest
        is time neither running nor runnable, i.e. blocked (a syscall, a poll) or waiting for the GIL.
        The kernel updates these counters at context switches, so short stages read as all "rest"."""
        if len(record) != 6:
            return None
        stamps = self.by_thread[record[3]]
        i = min(bisect.bisect_right(stamps, start), bisect.bisect_left(stamps, record[0]))
        if i == 0:
            return None
        wall = record[0] - start
        cpu_before, runq_before = self.sched_of[(record[3], stamps[i - 1])]
        cpu = min(wall, record[4] - cpu_before)
        runq = min(wall - cpu, record[5] - runq_before)
        return cpu, runq, wall - cpu - runq


@dataclass
class Write:
    proposer: int
    start: int
    end: int
    stages: dict[str, int] = field(default_factory=dict)  # label -> ns
    splits: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # label -> (cpu, run queue, rest)

    @property
    def total(self) -> int:
        return self.end - self.start


def follow(write: Write, chain: list[tuple[str, str, str]], traces: list[_Index], leader: int,
           addresses: list[str]) -> bool:
    """Fill ``write.stages`` along ``chain``; False when a hop is missing (counted in ``MISSED``)."""
    at = write.start
    stages: dict[str, int] = {}
    splits: dict[str, tuple[int, int, int]] = {}
    position = 0
    while position < len(chain):
        label, role, event = chain[position]
        if role == "F":
            # Follow each follower through its hops up to the leader's receipt of its acknowledgement;
            # keep the one the leader heard from first (the one that completed the commit).
            span = chain[position:position + 1 + [c[1] for c in chain[position:]].index("L")]
            best: tuple[int, dict[str, int], dict[str, tuple[int, int, int]]] | None = None
            for candidate in (i for i in range(len(traces)) if i != leader):
                t, found, found_splits = at, {}, {}
                for f_label, f_role, f_event in span:
                    if f_role == "L":
                        index, f_event = leader, f"{f_event}@{addresses[candidate]}"
                    else:
                        index = candidate
                    record = traces[index].first_record(f_event, t, write.end)
                    if record is None:
                        break
                    found[f_label] = record[0] - t
                    split = traces[index].split(record, t)
                    if split is not None:
                        found_splits[f_label] = split
                    t = record[0]
                else:
                    if best is None or t < best[0]:
                        best = (t, found, found_splits)
            if best is None:
                MISSED["follower hops"] = MISSED.get("follower hops", 0) + 1
                return False
            at = best[0]
            stages.update(best[1])
            splits.update(best[2])
            position += len(span)
            continue
        index = write.proposer if role == "P" else leader
        record = traces[index].first_record(event, at, write.end)
        if record is None:
            MISSED[label] = MISSED.get(label, 0) + 1
            return False
        stages[label] = record[0] - at
        split = traces[index].split(record, at)
        if split is not None:
            splits[label] = split
        at = record[0]
        position += 1
    stages[LAST] = write.end - at
    write.stages = stages
    write.splits = splits
    return True


def _us(values: list[int], p: float) -> float:
    value = percentile(values, p)
    return 0.0 if value is None else round(value / 1000, 1)


def summarize(writes: list[Write], chain: list[tuple[str, str, str]]) -> dict[str, Any]:
    if not writes:
        return {}
    labels = [label for label, _r, _e in chain] + [LAST]
    slow = sorted(writes, key=lambda w: w.total)[-max(1, len(writes) // 20):]
    rows = {}
    for label in labels:
        values = [w.stages[label] for w in writes]
        rows[label] = {
            "p50_us": _us(values, 50),
            "p99_us": _us(values, 99),
            "max_us": round(max(values) / 1000, 1),
            "slowest5pct_mean_us": round(sum(w.stages[label] for w in slow) / len(slow) / 1000, 1),
        }
        split = [w.splits[label] for w in writes if label in w.splits]
        slow_split = [w.splits[label] for w in slow if label in w.splits]
        if split:
            for name, part in (("cpu", 0), ("runq", 1), ("rest", 2)):
                rows[label][f"{name}_mean_us"] = round(sum(x[part] for x in split) / len(split) / 1000, 1)
                rows[label][f"{name}_p99_us"] = _us([x[part] for x in split], 99)
                if slow_split:
                    rows[label][f"{name}_slow5pct_us"] = round(
                        sum(x[part] for x in slow_split) / len(slow_split) / 1000, 1)
    totals = [w.total for w in writes]
    return {
        "writes": len(writes),
        "total_p50_ms": round(_us(totals, 50) / 1000, 2),
        "total_p99_ms": round(_us(totals, 99) / 1000, 2),
        "stages": rows,
    }


def print_table(title: str, summary: dict[str, Any]) -> None:
    if not summary:
        print(f"\n{title}: no complete write traced")
        return
    print(f"\n{title}: {summary['writes']} writes, total p50 {summary['total_p50_ms']} ms, "
          f"p99 {summary['total_p99_ms']} ms (µs per stage)")
    sched = any("cpu_mean_us" in row for row in summary["stages"].values())
    extra = f" {'cpu':>6} {'runq':>6} {'rest':>6} | {'cpu99':>6} {'runq99':>6} {'rest99':>6}" if sched else ""
    print(f"  {'stage':<46} {'p50':>6} {'p99':>6} {'max':>6} {'slow5%':>6}{extra}")
    for label, row in summary["stages"].items():
        line = (f"  {label:<46} {row['p50_us']:>6.0f} {row['p99_us']:>6.0f} {row['max_us']:>6.0f} "
                f"{row['slowest5pct_mean_us']:>6.0f}")
        if "cpu_mean_us" in row:
            line += (f" {row['cpu_mean_us']:>6.0f} {row['runq_mean_us']:>6.0f} {row['rest_mean_us']:>6.0f} |"
                     f" {row['cpu_p99_us']:>6.0f} {row['runq_p99_us']:>6.0f} {row['rest_p99_us']:>6.0f}")
        print(line)


class TracedCluster(EdgeCluster):
    def __init__(self, out_dir: Path, sched: bool, switch_interval: float | None) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.sched = sched
        self.switch_interval = switch_interval

    def argv(self, index: int) -> list[str]:
        argv = super().argv(index)
        assert argv[1:3] == ["-m", "edgek8s"]
        return [argv[0], "-m", "bench.seqtrace_master", *argv[3:]]

    def _spawn(self, index: int) -> None:
        m = self.masters[index]
        m.data_dir.mkdir(exist_ok=True)
        env = dict(os.environ, EDGEK8S_SEQTRACE_OUT=str(self.out_dir / f"{m.name}.jsonl"),
                   EDGEK8S_SEQTRACE_SCHED="1" if self.sched else "0",
                   EDGEK8S_SEQTRACE_SWITCH_INTERVAL=str(self.switch_interval or ""))
        m.proc = procs.spawn(self.argv(index), m.log_path, env=env)

    async def collect(self) -> list[Trace]:
        traces: list[Trace] = []
        for m in self.masters:
            path = self.out_dir / f"{m.name}.jsonl"
            path.unlink(missing_ok=True)
            assert m.proc is not None
            os.kill(m.proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not path.exists() or not path.read_text().endswith("\n"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{m.name} wrote no trace")
                await asyncio.sleep(0.05)
            traces.append([tuple(r) for r in json.loads(path.read_text().splitlines()[-1])])
        return traces


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out_dir = procs.make_temp_dir("bench-seqtrace-")
    cluster = TracedCluster(out_dir, args.sched, args.switch_interval)
    value = value_string()
    session = make_session(4)
    try:
        await cluster.start(session)
        leader = await cluster.find_leader(session, 30.0)
        for seq in range(args.warmup):
            await send_once(session, cluster.create_request(seq % 3, f"cm-w-{seq}", value), 10.0)
        await cluster.collect()  # drop the warm-up's records
        writes: list[Write] = []
        for seq in range(args.ops):
            node = seq % cluster.node_count
            request = cluster.create_request(node, f"cm-s-{seq}", value)
            start = time.monotonic_ns()
            status, body, _ = await send_once(session, request, 10.0)
            end = time.monotonic_ns()
            if status != 201:
                raise RuntimeError(f"create failed: HTTP {status} {body[:200]!r}")
            writes.append(Write(node, start, end))
            if args.gap_ms:
                await asyncio.sleep(args.gap_ms / 1000)
        if await cluster.find_leader(session, 10.0) != leader:
            raise RuntimeError("the leader changed during the run: trace again")
        traces = await cluster.collect()
        indexes = [_Index(t) for t in traces]
    finally:
        await session.close()
        cluster.stop()
        procs.remove_temp_dir(out_dir)
    addresses = [m.raft_address for m in cluster.masters]
    if args.dump is not None:
        raw = {"leader": leader, "addresses": addresses, "traces": traces,
               "writes": [(w.proposer, w.start, w.end) for w in writes]}
        args.dump.write_text(json.dumps(raw))
    forwarded = [w for w in writes if w.proposer != leader and follow(w, FORWARDED, indexes, leader, addresses)]
    local = [w for w in writes if w.proposer == leader and follow(w, LOCAL, indexes, leader, addresses)]
    figures = {
        "benchmark": "seqtrace",
        "ops": args.ops,
        "forwarded": summarize(forwarded, FORWARDED),
        "on_leader": summarize(local, LOCAL),
        "untraced": len(writes) - len(forwarded) - len(local),
        "missed_hops": MISSED,
    }
    print_table("Forwarded writes (proposed on a follower)", figures["forwarded"])
    print_table("Writes proposed on the leader", figures["on_leader"])
    print(f"\nwrites whose hops could not all be matched: {figures['untraced']} {MISSED}")
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench seqtrace", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300, help="sequential writes traced (default 300)")
    parser.add_argument("--warmup", type=int, default=100, help="writes before tracing (default 100)")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between writes (default none)")
    parser.add_argument("--sched", action="store_true",
                        help="split each stage into CPU, run-queue wait and the rest (blocked or waiting for "
                             "the GIL) of the thread that ends it (~10 µs per record: latencies grow)")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="SECONDS",
                        help="sys.setswitchinterval in the masters (default: Python's 0.005)")
    parser.add_argument("--dump", type=Path, default=None, metavar="FILE",
                        help="also write every master's records and the writes' windows to FILE (JSON)")
    args = parser.parse_args(argv)
    figures = procs.run_main(run(args))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
