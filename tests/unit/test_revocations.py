"""Which node revocations may be pruned: only those whose certificates have all expired anyway."""

from __future__ import annotations

import datetime

from edgek8s.model.revocations import SKEW_MARGIN, expired_revocations, revocation_times
from edgek8s.model.timestamps import format_time

NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)
LIFETIME = 3600.0


def ago(seconds: float) -> str:
    return format_time(NOW - datetime.timedelta(seconds=seconds))


def test_an_entry_goes_once_every_certificate_it_revokes_has_expired() -> None:
    data = {
        "old": ago(LIFETIME + SKEW_MARGIN + 1),       # every certificate issued before it has expired
        "edge": ago(LIFETIME + SKEW_MARGIN - 1),      # one issued just before could still be valid (skew)
        "recent": ago(10),
        "garbage": "not a time",                       # revokes nothing; left for an admin to see
    }
    assert expired_revocations(data, now=NOW, lifetime=LIFETIME) == ["old"]
    assert expired_revocations(data, now=NOW + datetime.timedelta(seconds=2), lifetime=LIFETIME) == ["edge", "old"]
    assert expired_revocations({}, now=NOW, lifetime=LIFETIME) == []


def test_revocation_times_skip_unparsable_entries() -> None:
    assert revocation_times({"a": "2026-11-29T12:00:00Z", "b": "", "c": 5}) == {
        "a": NOW.timestamp()}
