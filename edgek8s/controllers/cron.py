"""Standard 5-field cron schedules, as the CronJob controller reads ``spec.schedule``.

Upstream parses with robfig/cron's ``ParseStandard``; this module accepts the same language:
``minute hour day-of-month month day-of-week`` with ``*``, ``?`` (day fields), lists ``a,b``, ranges
``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (``a`` to the field's maximum), month names ``JAN``-``DEC``
and weekday names ``SUN``-``SAT`` (any case), weekdays 0-6 with 0 = Sunday, and the descriptors
``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``. As in
Vixie cron and robfig, when both day fields are restricted a day matches if either matches.
``TZ=``/``CRON_TZ=`` prefixes are refused as kube-apiserver refuses them: ``spec.timeZone`` says
which zone the schedule is read in.

Invariants: pure (no clock: every query takes the time); times are whole minutes; a
``Schedule`` is immutable. Searches skip whole months, days and hours that cannot match, so
``next_after`` and ``latest_at_or_before`` cost at most a few thousand steps even for
``0 0 29 2 *`` (which matches once in four years).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

__all__ = ["CronError", "Schedule", "parse_schedule", "zone"]

_MONTHS = {name: i + 1 for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Eight years of searching covers every satisfiable schedule (Feb 29 on a chosen weekday repeats
# within 28 years, but such a schedule matches Feb 29 OR that weekday, so much sooner).
_HORIZON = datetime.timedelta(days=366 * 8)
_MINUTE = datetime.timedelta(minutes=1)


class CronError(ValueError):
    """The schedule is not valid; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None


_FIELDS = (
    _Field("minute", 0, 59, None),
    _Field("hour", 0, 23, None),
    _Field("day of month", 1, 31, None),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 6, _WEEKDAYS),
)


def _number(text: str, field: _Field) -> int:
    if field.names is not None and text.upper() in field.names:
        return field.names[text.upper()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text!r} in the {field.name} field")
    return int(text)


def _parse_field(text: str, field: _Field) -> tuple[frozenset[int], bool]:
    """The values the field allows, and whether it was an unrestricted ``*``/``?``."""
    values: set[int] = set()
    star = False
    if not text:
        raise CronError(f"empty {field.name} field")
    for part in text.split(","):
        range_part, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in the {field.name} field")
            step = int(step_text)
        if range_part in ("*", "?"):
            if range_part == "?" and field.name not in ("day of month", "day of week"):
                raise CronError(f"'?' is only allowed in the day fields, not in the {field.name} field")
            low, high = field.low, field.high
            star = star or step == 1
        else:
            low_text, dash, high_text = range_part.partition("-")
            low = _number(low_text, field)
            high = _number(high_text, field) if dash else (field.high if slash else low)
        if low < field.low or high > field.high:
            raise CronError(f"{part!r} is out of range {field.low}-{field.high} in the {field.name} field")
        if low > high:
            raise CronError(f"beginning of range ({low}) beyond end of range ({high}) in the {field.name} field")
        values.update(range(low, high + 1, step))
    return frozenset(values), star


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule; times given to it are read as wall-clock times in their own zone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool

    def _day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return by_date and by_weekday
        return by_date or by_weekday

    def _matches(self, t: datetime.datetime) -> bool:
        return t.minute in self.minutes and t.hour in self.hours and self._day_matches(t.date())

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The first matching minute strictly after ``moment`` (aware), in ``moment``'s zone."""
        tz = moment.tzinfo
        t = moment.replace(tzinfo=None, second=0, microsecond=0) + _MINUTE
        end = t + _HORIZON
        while t < end:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + datetime.timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t.date()):
                t = t.replace(hour=0, minute=0) + datetime.timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + datetime.timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += _MINUTE
            else:
                found = t.replace(tzinfo=tz)
                if found > moment:  # a wall time repeated or skipped by a DST change
                    return found
                t += _MINUTE
        return None

    def latest_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The last matching minute at or before ``moment`` (aware), in ``moment``'s zone."""
        tz = moment.tzinfo
        t = moment.replace(tzinfo=None, second=0, microsecond=0)
        end = t - _HORIZON
        while t > end:
            if t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self._day_matches(t.date()):
                t = t.replace(hour=0, minute=0) - _MINUTE
            elif t.hour not in self.hours:
                t = t.replace(minute=0) - _MINUTE
            elif t.minute not in self.minutes:
                t -= _MINUTE
            else:
                found = t.replace(tzinfo=tz)
                if found <= moment:
                    return found
                t -= _MINUTE
        return None


def parse_schedule(text: str) -> Schedule:
    """Parse ``spec.schedule``; ``CronError`` with a reason when it is not a valid schedule."""
    spec = text.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise CronError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec.lower() not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec.lower()]
    parts = spec.split()
    if len(parts) != len(_FIELDS):
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: {text!r}")
    parsed = [_parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)]
    return Schedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        days_star=parsed[2][1],
        weekdays_star=parsed[4][1],
    )


def zone(name: str | None) -> datetime.tzinfo:
    """The zone of ``spec.timeZone`` (UTC when unset); ``CronError`` for an unknown zone."""
    if not name or name in ("UTC", "Etc/UTC"):
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name}") from exc
