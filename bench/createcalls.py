"""The `createcalls` benchmark: Python work per 1 KiB ConfigMap create on its pure paths and watch.

Wall-clock and even CPU figures of `writecpu` move ±15% on the shared VM; these do not. In one
process, without a cluster:
  * the proposer's pure path, as the API runs it for `POST .../configmaps`: orjson parse,
    fieldValidation (`negotiation.check_fields`), strategy and managedFields
    (`writes.prepare_created`), the store command's encoding;
  * `ClusterState.apply` of the resulting command, which every replica runs once per write;
  * on the leader, the garbage collector watching those creates: the watch hub's publish, the
    in-process watch and the collector's metadata informer (a loop step per apply batch, less the
    same steps with no watcher).
For each: Python function calls per create (cProfile, deterministic) and CPU µs per create (the
minimum of 5 passes over 2,000 creates, `time.process_time`). `--against DIR` measures the checkout
in DIR the same way, in a child process, and prints both (e.g. a worktree of main).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CREATES = 2000
PASSES = 5
VALUE_BYTES = 1024


def _measure() -> dict[str, float]:
    """Both paths for the edgek8s package importable from the current sys.path."""
    from aiohttp.test_utils import make_mocked_request

    from edgek8s.api.negotiation import check_fields, field_manager
    from edgek8s.api.writes import prepare_created
    from edgek8s.model import jsoncodec
    from edgek8s.model.resources import by_id, resource_id
    from edgek8s.store.state import ClusterState, encode_command

    rtype = by_id(resource_id("", "configmaps"))
    value = "ab" * (VALUE_BYTES // 2)
    bodies = [jsoncodec.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
                               "data": {"v": value}}) for i in range(CREATES)]
    request = make_mocked_request("POST", "/api/v1/namespaces/default/configmaps")

    def propose(raw: bytes, i: int) -> bytes:
        body = jsoncodec.loads(raw)
        check_fields(request, rtype, raw, body)
        obj = prepare_created(rtype, body, namespace="default", manager=field_manager(request, "unknown"))
        meta = obj["metadata"]
        meta["uid"], meta["creationTimestamp"] = f"00000000-0000-4000-8000-{i:012d}", "2026-11-29T10:00:00Z"
        return encode_command({"op": "create", "res": rtype.id, "ns": "default", "name": meta["name"], "obj": obj,
                               "rid": f"bench-{i}"})

    namespace = encode_command({"op": "create", "res": resource_id("", "namespaces"), "ns": "", "name": "default",
                                "obj": {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": "default", "uid": "ns-uid"}}})
    commands = [propose(raw, i) for i, raw in enumerate(bodies)]

    def fresh_apply() -> Callable[[bytes, int], Any]:
        state = ClusterState()
        state.apply(namespace, 1)
        return lambda command, i: state.apply(command, i + 2)

    def calls(run: Callable[[Any, int], Any], items: list[Any]) -> float:
        profile = cProfile.Profile()
        profile.enable()
        for i, item in enumerate(items):
            run(item, i)
        profile.disable()
        return sum(row[1] for row in pstats.Stats(profile).stats.values()) / len(items)  # type: ignore[attr-defined]

    def cpu(make: Callable[[], Callable[[Any, int], Any]], items: list[Any]) -> float:
        best = float("inf")
        for _ in range(PASSES):
            run = make()
            start = time.process_time()
            for i, item in enumerate(items):
                run(item, i)
            best = min(best, time.process_time() - start)
        return best / len(items) * 1e6

    events: list[Any] = []
    state = ClusterState(on_applied=lambda applied, rv: events.append((applied, rv)))
    state.apply(namespace, 1)
    for i, command in enumerate(commands):
        state.apply(command, i + 2)
    gc_calls, gc_cpu = asyncio.run(_gc_watch(events[1:]))
    return {
        "proposer_calls_per_create": round(calls(propose, bodies), 1),
        "proposer_cpu_us_per_create": round(cpu(lambda: propose, bodies), 1),
        "apply_calls_per_create": round(calls(fresh_apply(), commands), 1),
        "apply_cpu_us_per_create": round(cpu(fresh_apply, commands), 1),
        "leader_gc_watch_calls_per_create": round(gc_calls, 1),
        "leader_gc_watch_cpu_us_per_create": round(gc_cpu, 1),
    }


async def _gc_watch(events: list[Any]) -> tuple[float, float]:
    """The leader's garbage collector watching the creates: hub publish, in-process watch, its metadata
    informer, per create, less the same loop steps with no watcher (a loop step per apply batch)."""
    from edgek8s.api.inprocess import InProcessClient
    from edgek8s.client.informer import Handlers, InformerFactory
    from edgek8s.controllers.garbagecollector import GarbageCollector, in_graph
    from edgek8s.model.resources import by_id, resource_id
    from edgek8s.store.state import EventType, WatchEvent, make_stored
    from edgek8s.store.watch import WatchHub

    rtype = by_id(resource_id("", "configmaps"))
    marker_rv = events[-1][1] + 1  # a kept object after the creates: the informer has seen them all
    marker = make_stored(rtype.id, {"metadata": {"name": "marker", "namespace": "default", "uid": "m",
                                                 "resourceVersion": str(marker_rv), "finalizers": ["example.com/x"]}})
    batches = [*events, ([WatchEvent(EventType.ADDED, rtype.id, "default", "marker", marker)], marker_rv)]

    class Store:  # what InProcessClient's list and watch use of a RaftStore
        def __init__(self, hub: WatchHub) -> None:
            self.hub = hub

        async def list(self, *_args: Any, **_kwargs: Any) -> tuple[list[Any], int]:
            return [], 0

        def watch(self, rtype: Any, namespace: str | None, from_rv: int, *rest: Any) -> Any:
            return self.hub.watch(rtype.id, namespace, from_rv, *rest)

    async def run(watching: bool, profile: cProfile.Profile | None) -> float:
        hub = WatchHub(history=100, queue_size=len(batches) + 1)
        factory = InformerFactory(InProcessClient(Store(hub), manager="bench"))  # type: ignore[arg-type]
        tasks = [asyncio.create_task(factory.run())]
        if watching:
            tasks.append(asyncio.create_task(GarbageCollector(resources=(rtype,)).run(None, factory)))  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
            await factory.wait_synced()
        seen = asyncio.Event()
        if watching:  # the collector's informer, shared
            factory.metadata_informer(rtype, keep=in_graph).add_handlers(Handlers(
                on_add=lambda obj: seen.set() if obj["metadata"]["name"] == "marker" else None))
        start = time.process_time()
        if profile is not None:
            profile.enable()
        for applied, rv in batches:
            hub.publish(applied, rv)
            await asyncio.sleep(0)
        if watching:
            await seen.wait()
        if profile is not None:
            profile.disable()
        spent = time.process_time() - start
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return spent / len(events) * 1e6

    def counted(profile: cProfile.Profile) -> float:
        return sum(row[1] for row in pstats.Stats(profile).stats.values()) / len(events)  # type: ignore[attr-defined]

    with_watch, without = cProfile.Profile(), cProfile.Profile()
    await run(True, with_watch)
    await run(False, without)
    best = min([await run(True, None) for _ in range(PASSES)])
    baseline = min([await run(False, None) for _ in range(PASSES)])
    return counted(with_watch) - counted(without), best - baseline


def _measure_in(checkout: Path) -> dict[str, float]:
    """The same measurement of another checkout, in a child process that imports its package."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, __file__, "--child"], cwd=checkout, env=env, capture_output=True,
                          text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {checkout} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench createcalls", description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=None, metavar="DIR",
                        help="also measure the checkout in DIR (its edgek8s package), e.g. a worktree of main")
    args = parser.parse_args(argv)
    here = _measure()
    report: dict[str, Any] = {"benchmark": "createcalls", "creates": CREATES, "this": here}
    rows = [("this checkout", here)]
    if args.against is not None:
        other = _measure_in(args.against.resolve())
        report["against"] = {"dir": str(args.against), **other}
        rows.insert(0, (str(args.against), other))
    for label, figures in rows:
        print(f"{label}: proposer {figures['proposer_calls_per_create']:g} calls, "
              f"{figures['proposer_cpu_us_per_create']:g} µs CPU; apply {figures['apply_calls_per_create']:g} calls, "
              f"{figures['apply_cpu_us_per_create']:g} µs CPU; the leader's garbage-collector watch "
              f"{figures['leader_gc_watch_calls_per_create']:g} calls, "
              f"{figures['leader_gc_watch_cpu_us_per_create']:g} µs CPU (per 1 KiB ConfigMap create)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    sys.path.insert(0, os.getcwd())
    print(json.dumps(_measure()))
