"""The cron schedule parser: robfig/cron ParseStandard's language and its next/previous times."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from edgek8s.controllers.cron import CronError, parse_schedule, zone

UTC = datetime.UTC


def at(text: str, tz: datetime.tzinfo = UTC) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("spec", "field", "values"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5,10-12 * * * *", "minutes", {5, 10, 11, 12}),
        ("10-20/5 * * * *", "minutes", {10, 15, 20}),
        ("50/4 * * * *", "minutes", {50, 54, 58}),  # a/n: from a to the field's maximum
        ("0 9-17 * * *", "hours", set(range(9, 18))),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * jan-mar,DEC *", "months", {1, 2, 3, 12}),
        ("0 0 * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * sun,sat", "weekdays", {0, 6}),
        ("0 0 ? * 1", "weekdays", {1}),
        ("@hourly", "minutes", {0}),
        ("@weekly", "weekdays", {0}),
        ("@YEARLY", "months", {1}),
        ("@midnight", "hours", {0}),
    ],
)
def test_parse_fields(spec: str, field: str, values: set[int]) -> None:
    assert getattr(parse_schedule(spec), field) == frozenset(values)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("* * * *", "exactly 5 fields"),
        ("* * * * * *", "exactly 5 fields"),
        ("60 * * * *", "out of range"),
        ("* 24 * * *", "out of range"),
        ("* * 0 * *", "out of range"),
        ("* * * 13 *", "out of range"),
        ("* * * * 7", "out of range"),  # robfig: weekdays are 0-6
        ("5-1 * * * *", "beyond end of range"),
        ("*/0 * * * *", "invalid step"),
        ("*/x * * * *", "invalid step"),
        ("x * * * *", "failed to parse int"),
        ("? * * * *", "only allowed in the day fields"),
        ("@every 5m", "unrecognized descriptor"),
        ("TZ=UTC 0 * * * *", "timeZone"),
        ("CRON_TZ=Europe/Paris 0 * * * *", "timeZone"),
        ("* * * FOO *", "failed to parse int"),
        ("1,,2 * * * *", "failed to parse int"),
    ],
)
def test_parse_errors(spec: str, needle: str) -> None:
    with pytest.raises(CronError, match=needle):
        parse_schedule(spec)


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T10:07:30", "2026-01-01T10:15:00"),
        ("*/15 * * * *", "2026-01-01T10:15:00", "2026-01-01T10:30:00"),  # strictly after
        ("0 * * * *", "2026-01-01T23:59:00", "2026-01-02T00:00:00"),
        ("30 6 * * 1-5", "2026-01-02T07:00:00", "2026-01-05T06:30:00"),  # Fri -> Mon
        ("0 0 1 * *", "2026-01-31T12:00:00", "2026-02-01T00:00:00"),
        ("0 0 31 * *", "2026-02-01T00:00:00", "2026-03-31T00:00:00"),  # February has no 31st
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap day
        ("0 0 13 * 5", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),  # 13th OR Friday (Vixie)
        ("0 0 13 * *", "2026-01-01T00:00:00", "2026-01-13T00:00:00"),
        ("0 0 * * 5", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
        ("0 0 */2 * 1", "2026-01-01T00:00:00", "2026-01-03T00:00:00"),  # */n is a restriction: OR
        ("@yearly", "2026-06-01T00:00:00", "2027-01-01T00:00:00"),
        ("59 23 31 12 *", "2026-12-31T23:59:00", "2027-12-31T23:59:00"),
    ],
)
def test_next_after(spec: str, after: str, expected: str) -> None:
    assert parse_schedule(spec).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T10:07:30", "2026-01-01T10:00:00"),
        ("*/15 * * * *", "2026-01-01T10:15:00", "2026-01-01T10:15:00"),  # at or before
        ("30 6 * * 1-5", "2026-01-04T12:00:00", "2026-01-02T06:30:00"),  # Sunday -> Friday
        ("0 0 29 2 *", "2027-06-01T00:00:00", "2024-02-29T00:00:00"),
        ("0 12 1 jan *", "2026-01-01T11:59:59", "2025-01-01T12:00:00"),
    ],
)
def test_latest_at_or_before(spec: str, moment: str, expected: str) -> None:
    assert parse_schedule(spec).latest_at_or_before(at(moment)) == at(expected)


def test_impossible_schedule_has_no_time() -> None:
    never = parse_schedule("0 0 30 2 *")  # February 30th
    assert never.next_after(at("2026-01-01T00:00:00")) is None
    assert never.latest_at_or_before(at("2026-01-01T00:00:00")) is None


def test_time_zone_wall_clock_and_dst() -> None:
    paris = zone("Europe/Paris")
    daily = parse_schedule("30 2 * * *")
    # 2026-03-29 02:30 does not exist in Paris (clocks jump 02:00 -> 03:00): the run is not lost.
    found = daily.next_after(at("2026-03-28T12:00:00", paris))
    assert found is not None and found.date() == datetime.date(2026, 3, 29)
    nine = parse_schedule("0 9 * * *").next_after(at("2026-07-01T10:00:00", paris))
    assert nine is not None and nine.astimezone(UTC) == at("2026-07-02T07:00:00")  # CEST is UTC+2


def test_zone_names() -> None:
    assert zone(None) is UTC and zone("") is UTC and zone("Etc/UTC") is UTC
    assert zone("America/New_York") == zoneinfo.ZoneInfo("America/New_York")
    with pytest.raises(CronError, match="unknown time zone"):
        zone("Mars/Olympus_Mons")
