"""WatchHub, Watcher and AppliedBridge: replay then live events, in order, without gaps or duplicates.

Events are real ``WatchEvent``s (built with ``make_stored`` or produced by a real ``ClusterState``);
the bridge tests push them from a real second thread, as the Raft thread does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from edgek8s.model import errors
from edgek8s.model.resources import ResourceId, resource_id
from edgek8s.store.state import ClusterState, EventType, StoredObject, WatchEvent, encode_command, make_stored
from edgek8s.store.watch import AppliedBridge, Delivery, Watcher, WatcherFellBehind, WatchHub

PODS = resource_id("", "pods")
CONFIGMAPS = resource_id("", "configmaps")
NAMESPACES = resource_id("", "namespaces")


def everything(_obj: StoredObject) -> bool:
    return True


def app_is_web(obj: StoredObject) -> bool:
    return obj.labels.get("app") == "web"


def stored(
    rv: int, name: str, ns: str = "default", labels: dict[str, str] | None = None, rid: ResourceId = PODS
) -> StoredObject:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "resourceVersion": str(rv),
            "uid": f"uid-{name}",
            "labels": labels or {},
        }
    }
    return make_stored(rid, obj)


def event(
    kind: EventType,
    rv: int,
    name: str = "p",
    ns: str = "default",
    labels: dict[str, str] | None = None,
    prev_labels: dict[str, str] | None = None,
    rid: ResourceId = PODS,
) -> WatchEvent:
    prev = None if prev_labels is None else stored(rv - 1, name, ns, prev_labels, rid)
    return WatchEvent(kind, rid, ns, name, stored(rv, name, ns, labels, rid), prev)


def added(rv: int, name: str | None = None, ns: str = "default", rid: ResourceId = PODS) -> WatchEvent:
    return event(EventType.ADDED, rv, name or f"p{rv}", ns, rid=rid)


def publish_each(hub: WatchHub, events: list[WatchEvent]) -> None:
    for ev in events:
        hub.publish([ev], ev.rv)


def drain(watcher: Watcher) -> list[Delivery]:
    return watcher.drain_ready(10_000)


def rvs(deliveries: list[Delivery]) -> list[int]:
    return [d.obj.rv for d in deliveries]


async def read_until_closed(watcher: Watcher) -> list[Delivery]:
    out: list[Delivery] = []
    while (delivery := await watcher.next(1.0)) is not None:
        out.append(delivery)
    return out


# --- replay then live ----------------------------------------------------------------------------------


@pytest.mark.parametrize("from_rv", [0, 1, 4, 9, 10])
async def test_replay_from_rv_then_live_without_gaps_or_duplicates(from_rv: int) -> None:
    hub = WatchHub(history=100, queue_size=100)
    history = [added(rv) for rv in range(1, 11)]
    publish_each(hub, history)
    hub.publish([added(10, "cm", rid=CONFIGMAPS)], 10)  # another resource: never delivered

    watcher = hub.watch(PODS, None, from_rv, everything)
    replayed = drain(watcher)
    assert rvs(replayed) == list(range(from_rv + 1, 11))
    assert all(d.type == EventType.ADDED for d in replayed)

    publish_each(hub, [added(rv) for rv in range(11, 14)])
    hub.publish([], 14)  # a barrier: progress only
    publish_each(hub, [added(15)])
    live = drain(watcher)
    assert rvs(live) == [11, 12, 13, 15]
    assert drain(watcher) == []
    assert not watcher.closed


async def test_replay_and_subscription_are_one_step_even_with_concurrent_publishing() -> None:
    """A publisher task keeps going while watchers start at various rvs: each sees a contiguous run."""
    hub = WatchHub(history=10_000, queue_size=10_000)
    total = 400

    async def publisher() -> None:
        for rv in range(1, total + 1):
            hub.publish([added(rv)], rv)
            if rv % 7 == 0:
                await asyncio.sleep(0)

    task = asyncio.create_task(publisher())
    watchers: list[tuple[int, Watcher]] = []
    while not task.done():
        start = hub.progress_rv
        watchers.append((start, hub.watch(PODS, None, start, everything)))
        await asyncio.sleep(0)
    await task
    assert len(watchers) > 10
    for start, watcher in watchers:
        assert rvs(drain(watcher)) == list(range(start + 1, total + 1))




async def test_a_watch_from_an_rv_not_yet_published_skips_events_up_to_it() -> None:
    hub = WatchHub(history=100, queue_size=100)
    publish_each(hub, [added(rv) for rv in range(1, 6)])
    watcher = hub.watch(PODS, None, 8, everything)  # the client has seen everything up to 8

    publish_each(hub, [added(rv) for rv in range(6, 11)])

    assert rvs(drain(watcher)) == [9, 10]


async def test_list_then_watch_from_the_list_rv_sends_no_duplicates() -> None:
    """The API's list-then-watch: the list rv comes from the state, whose events may still be in flight."""
    hub = WatchHub(history=100, queue_size=100)
    bridge = AppliedBridge(asyncio.get_running_loop(), hub)
    state = ClusterState(on_applied=bridge.on_applied, on_reset=bridge.on_reset)
    ns = {"metadata": {"name": "default"}}

    def raft_thread() -> None:
        state.apply(encode_command({"op": "create", "res": NAMESPACES, "ns": "", "name": "default", "obj": ns}), 1)
        for index in range(2, 5):
            name = f"p{index}"
            obj = {"metadata": {"name": name, "namespace": "default", "uid": name}}
            state.apply(encode_command({"op": "create", "res": PODS, "ns": "default", "name": name, "obj": obj}), index)

    thread = threading.Thread(target=raft_thread)
    thread.start()
    thread.join()  # applied on the Raft thread; the loop has not run the bridge yet
    listed, list_rv = state.list(PODS, None)
    assert [o.rv for o in listed] == [2, 3, 4] and list_rv == 4
    watcher = hub.watch(PODS, None, list_rv, everything)

    assert await hub.wait_for_progress(4, 5.0)

    assert drain(watcher) == []  # the list already had p2..p4


async def test_events_sharing_one_rv_are_all_delivered() -> None:
    # A namespace's last object and the namespace itself go at the same index.
    hub = WatchHub(history=10, queue_size=10)
    pods = hub.watch(PODS, None, 0, everything)
    namespaces = hub.watch(NAMESPACES, None, 0, everything)
    hub.publish(
        [
            event(EventType.DELETED, 7, "p", prev_labels={}),
            event(EventType.DELETED, 7, "team", "", prev_labels={}, rid=NAMESPACES),
        ],
        7,
    )
    assert [(d.type, d.obj.rv) for d in drain(pods)] == [(EventType.DELETED, 7)]
    assert [(d.type, d.obj.rv) for d in drain(namespaces)] == [(EventType.DELETED, 7)]


# --- history floor -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_rv", "replay"),
    [(0, None), (6, None), (7, [8, 9, 10]), (8, [9, 10]), (10, [])],
)
async def test_watch_from_below_the_floor_is_gone(from_rv: int, replay: list[int] | None) -> None:
    hub = WatchHub(history=3, queue_size=100)
    publish_each(hub, [added(rv) for rv in range(1, 11)])
    assert hub.floor == 7  # 1..7 trimmed; 8, 9, 10 kept

    if replay is None:
        with pytest.raises(errors.Gone) as caught:
            hub.watch(PODS, None, from_rv, everything)
        assert caught.value.code == 410
        assert caught.value.reason == "Expired"
        assert caught.value.message == f"too old resource version: {from_rv} (7)"
        assert hub.watcher_count() == 0
    else:
        assert rvs(drain(hub.watch(PODS, None, from_rv, everything))) == replay


async def test_history_kept_as_fields_replays_the_same_events_and_trims_batches_exactly() -> None:
    # A batch of one Raft entry can carry two events with one rv (a namespace finishing with its last
    # object); the history keeps each event's fields, not the event, and rebuilds equal events on replay.
    hub = WatchHub(history=3, queue_size=100)
    modified = event(EventType.MODIFIED, 3, "p1", labels={"app": "web"}, prev_labels={"app": "db"})
    batches = [[added(1, "p1")], [added(2, "c1", rid=CONFIGMAPS)], [modified, added(3, "p3")],
               [event(EventType.DELETED, 4, "p3", prev_labels={})]]
    for batch in batches:
        hub.publish(batch, batch[-1].rv)
    assert hub.floor == 2  # 1 and 2 trimmed: the two rv-3 events and rv 4 kept
    assert drain(hub.watch(PODS, None, 2, everything)) == [
        Delivery(EventType.MODIFIED, modified.obj), Delivery(EventType.ADDED, batches[2][1].obj),
        Delivery(EventType.DELETED, batches[3][0].obj)]
    # The previous object comes back too: p1 starts to match app=web (ADDED); p3 never matched.
    assert drain(hub.watch(PODS, None, 2, app_is_web)) == [Delivery(EventType.ADDED, modified.obj)]
    assert rvs(drain(hub.watch(CONFIGMAPS, None, 2, everything))) == []
    with pytest.raises(errors.Gone):
        hub.watch(CONFIGMAPS, None, 1, everything)


async def test_a_hub_without_history_keeps_its_floor_at_the_newest_event() -> None:
    hub = WatchHub(history=0, queue_size=100)
    publish_each(hub, [added(rv) for rv in range(1, 4)])
    assert hub.floor == 3
    assert rvs(drain(hub.watch(PODS, None, 3, everything))) == []


async def test_untrimmed_history_serves_watches_from_zero() -> None:
    hub = WatchHub(history=5, queue_size=100)
    publish_each(hub, [added(rv) for rv in range(1, 6)])
    assert hub.floor == 0
    assert rvs(drain(hub.watch(PODS, None, 0, everything))) == [1, 2, 3, 4, 5]


async def test_a_hub_created_with_a_floor_refuses_older_watches() -> None:
    hub = WatchHub(history=5, queue_size=5, floor=50)
    assert hub.progress_rv == 50
    with pytest.raises(errors.Gone):
        hub.watch(PODS, None, 49, everything)
    watcher = hub.watch(PODS, None, 50, everything)
    hub.publish([added(51)], 51)
    assert rvs(drain(watcher)) == [51]


# --- bounded queues ------------------------------------------------------------------------------------


async def test_a_watcher_that_falls_behind_is_closed_and_unregistered_others_are_not() -> None:
    hub = WatchHub(history=100, queue_size=3)
    slow = hub.watch(PODS, None, 0, everything)
    fast = hub.watch(PODS, None, 0, everything)
    assert hub.watcher_count() == 2

    received: list[Delivery] = []
    for rv in range(1, 9):
        hub.publish([added(rv)], rv)
        received.extend(drain(fast))

    assert slow.closed
    assert isinstance(slow.error, WatcherFellBehind)
    assert isinstance(slow.error, errors.Gone) and slow.error.code == 410
    assert "fell more than 3 events behind" in slow.error.message
    assert hub.watcher_count() == 1
    assert not fast.closed and fast.error is None
    assert rvs(received) == list(range(1, 9))

    leftovers = await read_until_closed(slow)
    assert len(leftovers) < 4
    assert await slow.next(1.0) is None  # stays closed
    hub.publish([added(9)], 9)
    assert drain(slow) == []
    assert rvs(drain(fast)) == [9]


async def test_a_watcher_closed_for_falling_behind_delivers_a_gapless_prefix() -> None:
    hub = WatchHub(history=100, queue_size=3)
    slow = hub.watch(PODS, None, 0, everything)
    publish_each(hub, [added(rv) for rv in range(1, 5)])
    assert slow.closed

    delivered = rvs(await read_until_closed(slow))

    assert delivered == list(range(1, len(delivered) + 1))


async def test_a_replay_larger_than_the_queue_returns_a_closed_unregistered_watcher() -> None:
    hub = WatchHub(history=100, queue_size=4)
    publish_each(hub, [added(rv) for rv in range(1, 11)])

    watcher = hub.watch(PODS, None, 0, everything)

    assert watcher.closed
    assert isinstance(watcher.error, WatcherFellBehind)
    assert hub.watcher_count() == 0
    hub.publish([added(11)], 11)
    assert 11 not in rvs(await read_until_closed(watcher))


async def test_closing_a_watcher_wakes_a_blocked_reader_and_unregisters_it() -> None:
    hub = WatchHub(history=10, queue_size=10)
    watcher = hub.watch(PODS, None, 0, everything)
    reader = asyncio.create_task(watcher.next(5.0))
    await asyncio.sleep(0)
    watcher.close()
    assert await reader is None
    assert watcher.error is None
    assert hub.watcher_count() == 0
    watcher.close(errors.Gone("again"))  # idempotent: the first reason stays
    assert watcher.error is None


async def test_next_times_out_when_idle() -> None:
    hub = WatchHub(history=10, queue_size=10)
    watcher = hub.watch(PODS, None, 0, everything)
    with pytest.raises(TimeoutError):
        await watcher.next(0.01)
    assert not watcher.closed


async def test_drain_ready_respects_its_limit_and_keeps_order() -> None:
    hub = WatchHub(history=100, queue_size=100)
    watcher = hub.watch(PODS, None, 0, everything)
    publish_each(hub, [added(rv) for rv in range(1, 11)])
    assert rvs(watcher.drain_ready(4)) == [1, 2, 3, 4]
    first = await watcher.next(1.0)
    assert first is not None and first.obj.rv == 5
    assert rvs(watcher.drain_ready(100)) == [6, 7, 8, 9, 10]


# --- selectors and namespaces --------------------------------------------------------------------------

WEB = {"app": "web"}
DB = {"app": "db"}


@pytest.mark.parametrize(
    ("kind", "prev_labels", "labels", "delivered"),
    [
        (EventType.ADDED, None, WEB, EventType.ADDED),
        (EventType.ADDED, None, DB, None),
        (EventType.MODIFIED, WEB, WEB, EventType.MODIFIED),
        (EventType.MODIFIED, DB, WEB, EventType.ADDED),  # starts to match
        (EventType.MODIFIED, WEB, DB, EventType.DELETED),  # stops matching
        (EventType.MODIFIED, DB, DB, None),
        (EventType.DELETED, WEB, WEB, EventType.DELETED),
        (EventType.DELETED, WEB, DB, EventType.DELETED),  # judged by the object as it was
        (EventType.DELETED, DB, DB, None),  # deletes of objects the watcher never saw are not sent
        (EventType.DELETED, DB, WEB, None),
    ],
)
async def test_selector_transitions_follow_upstream_cacher(
    kind: EventType, prev_labels: dict[str, str] | None, labels: dict[str, str], delivered: EventType | None
) -> None:
    hub = WatchHub(history=10, queue_size=10)
    live = hub.watch(PODS, None, 0, app_is_web)
    ev = event(kind, 5, labels=labels, prev_labels=prev_labels)

    hub.publish([ev], 5)
    replayed = hub.watch(PODS, None, 0, app_is_web)  # the same conversion applies on replay

    for watcher in (live, replayed):
        deliveries = drain(watcher)
        if delivered is None:
            assert deliveries == []
        else:
            assert deliveries == [Delivery(delivered, ev.obj)]


async def test_a_selector_watch_sees_an_object_enter_change_and_leave() -> None:
    hub = WatchHub(history=10, queue_size=10)
    watcher = hub.watch(PODS, None, 0, app_is_web)
    hub.publish([event(EventType.ADDED, 1, labels=DB)], 1)
    hub.publish([event(EventType.MODIFIED, 2, labels=WEB, prev_labels=DB)], 2)
    hub.publish([event(EventType.MODIFIED, 3, labels={**WEB, "v": "2"}, prev_labels=WEB)], 3)
    hub.publish([event(EventType.MODIFIED, 4, labels=DB, prev_labels={**WEB, "v": "2"})], 4)
    hub.publish([event(EventType.DELETED, 5, labels=DB, prev_labels=DB)], 5)
    assert [(d.type, d.obj.rv) for d in drain(watcher)] == [
        (EventType.ADDED, 2),
        (EventType.MODIFIED, 3),
        (EventType.DELETED, 4),
    ]


def mentions_web(raw: bytes) -> bool:
    return b'"web"' in raw


@pytest.mark.parametrize(
    ("kind", "prev_labels", "labels", "delivered"),
    [
        (EventType.ADDED, None, WEB, EventType.ADDED),
        (EventType.ADDED, None, DB, None),  # the consumer ignores it: left out before any conversion
        (EventType.MODIFIED, None, DB, None),
        (EventType.MODIFIED, DB, DB, None),
        (EventType.MODIFIED, WEB, DB, EventType.MODIFIED),  # the consumer may hold the previous state
        (EventType.MODIFIED, DB, WEB, EventType.MODIFIED),
        (EventType.DELETED, DB, DB, EventType.DELETED),  # deletions always come
    ],
)
async def test_a_prefilter_leaves_out_only_what_fails_it_before_and_after(
    kind: EventType, prev_labels: dict[str, str] | None, labels: dict[str, str], delivered: EventType | None
) -> None:
    hub = WatchHub(history=10, queue_size=10)
    live = hub.watch(PODS, None, 0, everything, mentions_web)
    ev = event(kind, 5, labels=labels, prev_labels=prev_labels)
    hub.publish([ev], 5)
    replayed = hub.watch(PODS, None, 0, everything, mentions_web)
    unfiltered = hub.watch(PODS, None, 0, everything)
    assert drain(unfiltered) == [Delivery(kind, ev.obj)]
    for watcher in (live, replayed):
        assert drain(watcher) == ([] if delivered is None else [Delivery(delivered, ev.obj)])


async def test_a_prefilter_never_hides_a_selector_transition_to_deleted() -> None:
    hub = WatchHub(history=10, queue_size=10)
    watcher = hub.watch(PODS, None, 0, app_is_web, lambda raw: b'"tier"' in raw)
    hub.publish([event(EventType.MODIFIED, 2, labels=DB, prev_labels=WEB)], 2)  # stops matching
    assert [(d.type, d.obj.rv) for d in drain(watcher)] == [(EventType.DELETED, 2)]


@pytest.mark.parametrize(
    ("ns", "expected"), [(None, ["a1", "b1", "a2"]), ("a", ["a1", "a2"]), ("b", ["b1"]), ("c", [])]
)
async def test_namespace_filtering(ns: str | None, expected: list[str]) -> None:
    hub = WatchHub(history=10, queue_size=10)
    live = hub.watch(PODS, ns, 0, everything)
    publish_each(hub, [added(1, "a1", "a"), added(2, "b1", "b"), added(3, "a2", "a")])
    replayed = hub.watch(PODS, ns, 0, everything)
    for watcher in (live, replayed):
        assert [d.obj.fields["metadata.name"] for d in drain(watcher)] == expected


# --- progress ------------------------------------------------------------------------------------------


async def test_wait_for_progress_returns_true_once_published_and_false_on_timeout() -> None:
    hub = WatchHub(history=10, queue_size=10)
    hub.publish([], 3)
    assert await hub.wait_for_progress(3, 0.01) is True  # already there
    assert await hub.wait_for_progress(2, 0.01) is True

    loop = asyncio.get_running_loop()
    loop.call_later(0.02, hub.publish, [added(4)], 4)
    loop.call_later(0.04, hub.publish, [], 6)
    started = time.monotonic()
    early, late = await asyncio.gather(hub.wait_for_progress(4, 5.0), hub.wait_for_progress(6, 5.0))
    assert (early, late) == (True, True)
    assert time.monotonic() - started < 2.0
    assert hub.progress_rv == 6

    started = time.monotonic()
    assert await hub.wait_for_progress(7, 0.05) is False
    assert time.monotonic() - started >= 0.04
    assert hub._progress_waiters == []  # a timed-out waiter does not linger


async def test_progress_never_goes_backwards() -> None:
    hub = WatchHub(history=10, queue_size=10)
    hub.publish([], 9)
    hub.publish([], 4)
    assert hub.progress_rv == 9


# --- reset ---------------------------------------------------------------------------------------------


async def test_reset_closes_watchers_with_gone_and_raises_the_floor() -> None:
    hub = WatchHub(history=100, queue_size=100)
    publish_each(hub, [added(rv) for rv in range(1, 6)])
    watchers = [hub.watch(PODS, None, 0, everything), hub.watch(CONFIGMAPS, "x", 3, everything)]
    waiter = asyncio.create_task(hub.wait_for_progress(40, 5.0))
    await asyncio.sleep(0)

    hub.reset(40)

    for watcher in watchers:
        assert watcher.closed
        assert type(watcher.error) is errors.Gone
        assert watcher.error.code == 410
    assert hub.watcher_count() == 0
    assert (hub.floor, hub.progress_rv) == (40, 40)
    assert await waiter is True
    with pytest.raises(errors.Gone):
        hub.watch(PODS, None, 39, everything)
    fresh = hub.watch(PODS, None, 40, everything)
    assert drain(fresh) == []  # the old history is gone
    hub.publish([added(41)], 41)
    assert rvs(drain(fresh)) == [41]


async def test_reset_to_an_older_index_keeps_progress() -> None:
    hub = WatchHub(history=10, queue_size=10)
    hub.publish([], 30)
    hub.reset(20)
    assert (hub.floor, hub.progress_rv) == (20, 30)


# --- AppliedBridge -------------------------------------------------------------------------------------


async def test_bridge_batches_events_pushed_from_another_thread_into_one_loop_step() -> None:
    hub = WatchHub(history=1000, queue_size=1000)
    bridge = AppliedBridge(asyncio.get_running_loop(), hub)
    watcher = hub.watch(PODS, None, 0, everything)

    def raft_thread() -> None:
        for rv in range(1, 51):
            bridge.on_applied([added(rv)] if rv % 5 else [], rv)  # every fifth index: a barrier

    thread = threading.Thread(target=raft_thread)
    thread.start()
    thread.join()  # the loop is blocked meanwhile: nothing can have been published yet
    assert hub.progress_rv == 0
    assert drain(watcher) == []

    await asyncio.sleep(0)  # one loop iteration runs the single scheduled drain

    assert hub.progress_rv == 50
    assert rvs(drain(watcher)) == [rv for rv in range(1, 51) if rv % 5]


async def test_bridge_delivers_in_order_while_both_threads_run() -> None:
    hub = WatchHub(history=100_000, queue_size=100_000)
    bridge = AppliedBridge(asyncio.get_running_loop(), hub)
    watcher = hub.watch(PODS, None, 0, everything)
    total = 3000
    seen_progress: list[int] = []

    def raft_thread() -> None:
        for rv in range(1, total + 1):
            bridge.on_applied([added(rv)], rv)
            if rv % 100 == 0:
                time.sleep(0.001)

    thread = threading.Thread(target=raft_thread)
    thread.start()
    try:
        while hub.progress_rv < total:
            seen_progress.append(hub.progress_rv)
            assert await hub.wait_for_progress(hub.progress_rv + 1, 10.0)
    finally:
        thread.join()

    assert rvs(drain(watcher)) == list(range(1, total + 1))
    assert seen_progress == sorted(seen_progress)
    assert len(seen_progress) < total  # batched: fewer loop wake-ups than applies


async def test_bridge_carries_a_real_state_machine_and_its_snapshot_resets() -> None:
    hub = WatchHub(history=1000, queue_size=1000)
    bridge = AppliedBridge(asyncio.get_running_loop(), hub)
    state = ClusterState(on_applied=bridge.on_applied, on_reset=bridge.on_reset)
    watcher = hub.watch(PODS, "default", 0, app_is_web)

    def command(**fields: Any) -> bytes:
        return encode_command(fields)

    def pod(name: str, app: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "default", "uid": f"u-{name}", "labels": {"app": app}}}

    log = [
        command(op="create", res=NAMESPACES, ns="", name="default", obj={"metadata": {"name": "default"}}),
        command(op="create", res=PODS, ns="default", name="a", obj=pod("a", "web")),
        command(op="create", res=PODS, ns="default", name="b", obj=pod("b", "db")),
        b"",
        command(op="update", res=PODS, ns="default", name="b", obj=pod("b", "web")),
        command(op="update", res=PODS, ns="default", name="a", obj=pod("a", "db")),
        command(op="delete", res=PODS, ns="default", name="b", now="2024-01-01T00:00:00Z"),
    ]

    def raft_thread() -> None:
        for index, payload in enumerate(log, start=1):
            state.apply(payload, index)

    thread = threading.Thread(target=raft_thread)
    thread.start()
    thread.join()
    assert await hub.wait_for_progress(len(log), 5.0)

    assert [(d.type, d.obj.fields["metadata.name"], d.obj.rv) for d in drain(watcher)] == [
        (EventType.ADDED, "a", 2),
        (EventType.ADDED, "b", 5),
        (EventType.DELETED, "a", 6),
        (EventType.DELETED, "b", 7),
    ]

    snapshot = state.snapshot()
    restore = threading.Thread(target=state.restore, args=({**snapshot, "rv": 100},))
    restore.start()
    restore.join()
    assert await hub.wait_for_progress(100, 5.0)
    assert watcher.closed and type(watcher.error) is errors.Gone
    assert hub.floor == 100
    with pytest.raises(errors.Gone):
        hub.watch(PODS, None, 99, everything)


async def test_bridge_drops_events_applied_before_a_reset_it_has_not_delivered() -> None:
    hub = WatchHub(history=100, queue_size=100)
    bridge = AppliedBridge(asyncio.get_running_loop(), hub)
    old = hub.watch(PODS, None, 0, everything)

    def raft_thread() -> None:
        bridge.on_applied([added(1)], 1)
        bridge.on_reset(10)  # a snapshot replaced the state before the loop ran
        bridge.on_applied([added(11)], 11)

    thread = threading.Thread(target=raft_thread)
    thread.start()
    thread.join()
    await asyncio.sleep(0)

    assert old.closed and type(old.error) is errors.Gone
    assert drain(old) == []  # event 1 was never delivered: it belongs to the replaced state
    assert (hub.floor, hub.progress_rv) == (10, 11)
    assert rvs(drain(hub.watch(PODS, None, 10, everything))) == [11]


async def test_a_bridge_with_a_hand_off_reaches_the_loop_through_it_once_per_batch() -> None:
    # The store passes the Raft node's hand-off: watch events and proposal answers share one loop wake-up.
    hub = WatchHub(history=100, queue_size=100)
    loop = asyncio.get_running_loop()
    posted: list[Any] = []

    def post(work: Any) -> None:
        posted.append(work)
        loop.call_soon_threadsafe(work)

    bridge = AppliedBridge(loop, hub, post=post)
    state = ClusterState(on_applied=bridge.on_applied, on_reset=bridge.on_reset)
    ns = {"metadata": {"name": "default"}}
    watcher = hub.watch(NAMESPACES, None, 0, everything)

    def raft_thread() -> None:  # one apply batch: the loop does not run in between
        state.apply(encode_command({"op": "create", "res": NAMESPACES, "ns": "", "name": "default", "obj": ns}), 1)
        state.apply(b"", 2)

    thread = threading.Thread(target=raft_thread)
    thread.start()
    thread.join()
    assert await hub.wait_for_progress(2, 5.0)
    assert len(posted) == 1  # one hand-off for the batch, and no call of its own
    assert rvs(drain(watcher)) == [1]
