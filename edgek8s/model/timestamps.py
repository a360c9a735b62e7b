"""``metav1.Time`` on the wire: RFC 3339 in UTC with second precision (``2026-11-29T04:09:16Z``).

Parsing is lenient as upstream's is about fractions and offsets; anything unparsable is None (Go's
zero time), never an exception, because controllers read these fields from objects users wrote.
"""

from __future__ import annotations

import datetime


def parse_time(value: object) -> datetime.datetime | None:
    """An aware datetime for an RFC 3339 string; None for absent, empty or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """The wire form of ``moment`` (naive datetimes are taken as UTC), truncated to the second."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
