"""Brute-force reference for `booking.availability.free_slots`, minute by minute.

Deliberately naive and slow, and built differently from the engine: it walks every UTC minute,
reads it on the local wall clock and asks the definition's questions of that reading directly,
with no intervals, merging or bisect. Opening times are compared on the local wall clock, with the
two corrections that DST requires (see `_Bound`). Times must be whole minutes.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.availability import Interval, OpeningRule

MINUTE = timedelta(minutes=1)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Bound:
    """An opening or closing time of a rule on one day, placed on the local wall clock.

    `wall` is where the clock shows it: a time in the spring gap is read with the offset in force
    before the gap (fold=0), which puts it one gap-length later on the clock. `repeated` says the
    time occurs twice (autumn); the bound is then its first occurrence.
    """

    wall: datetime
    repeated: bool


def _bound(day: date, at: time, tz: ZoneInfo) -> _Bound:
    first = datetime.combine(day, at, tzinfo=tz)
    shown = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    exists = shown == first.replace(tzinfo=None)
    offsets_differ = first.utcoffset() != first.replace(fold=1).utcoffset()
    return _Bound(wall=shown, repeated=exists and offsets_differ)


def _reached(local: datetime, bound: _Bound) -> bool:
    """Whether the instant whose local reading is `local` is at or after `bound`."""
    wall = local.replace(tzinfo=None)
    # The second pass through a repeated hour comes after every time of the first pass.
    second_pass = local.fold == 1 and bound.repeated and bound.wall.date() == wall.date()
    return wall >= bound.wall or second_pass


def _minutes_of_day(at: time) -> int:
    assert (at.second, at.microsecond) == (0, 0), "the reference needs whole minutes"
    return at.hour * 60 + at.minute


def _on_grid(wall: time, rule: OpeningRule, duration_minutes: int) -> bool:
    offset = _minutes_of_day(wall) - _minutes_of_day(rule.start)
    fits = _minutes_of_day(wall) + duration_minutes <= _minutes_of_day(rule.end)
    return offset >= 0 and offset % duration_minutes == 0 and fits


def _busy_minutes(busy: Sequence[Interval]) -> set[datetime]:
    """Every UTC minute [m, m + 1 min) that overlaps a busy interval."""
    minutes: set[datetime] = set()
    for interval in busy:
        # In UTC: comparing two readings of one zone ignores fold, so misorders a repeated hour.
        start, end = interval.start.astimezone(UTC), interval.end.astimezone(UTC)
        if start >= end:  # the engine's contract: empty periods block nothing
            continue
        minute = start.replace(second=0, microsecond=0)
        while minute < end:
            minutes.add(minute)
            minute += MINUTE
    return minutes


def _days(first_day: date, last_day: date) -> list[date]:
    return [first_day + n * ONE_DAY for n in range((last_day - first_day).days + 1)]


@dataclass(slots=True)
class _Agenda:
    """The questions the definition asks about one UTC minute."""

    tz: ZoneInfo
    duration_minutes: int
    latest_day: date | None
    applying: dict[date, list[OpeningRule]]
    opening_hours: list[tuple[_Bound, _Bound]]
    busy_minutes: set[datetime]
    open_minutes: dict[datetime, bool] = field(default_factory=dict)

    def is_candidate(self, minute: datetime) -> bool:
        local = minute.astimezone(self.tz)
        rules = self.applying.get(local.date(), [])
        on_grid = any(_on_grid(local.time(), rule, self.duration_minutes) for rule in rules)
        within_horizon = self.latest_day is None or local.date() <= self.latest_day
        return local.fold == 0 and on_grid and within_horizon

    def is_free(self, start: datetime) -> bool:
        elapsed = (start + n * MINUTE for n in range(self.duration_minutes))
        return all(self.is_open(m) and m not in self.busy_minutes for m in elapsed)

    def is_open(self, minute: datetime) -> bool:
        if minute not in self.open_minutes:
            local = minute.astimezone(self.tz)
            self.open_minutes[minute] = any(
                _reached(local, opens) and not _reached(local, closes)
                for opens, closes in self.opening_hours
            )
        return self.open_minutes[minute]


def reference_free_slots(
    *,
    rules: Sequence[OpeningRule],
    busy: Sequence[Interval],
    reason_id: int,
    duration: timedelta,
    tz: ZoneInfo,
    first_day: date,
    last_day: date,
    earliest: datetime,
    latest_day: date | None = None,
) -> list[datetime]:
    """Same contract as `free_slots`, for whole-minute rules and durations."""
    duration_minutes, remainder = divmod(duration, MINUTE)
    assert not remainder, "the reference needs whole minutes"
    assert duration_minutes > 0
    days = _days(first_day, last_day)
    applying = {day: [rule for rule in rules if rule.applies(day, reason_id)] for day in days}
    agenda = _Agenda(
        tz=tz,
        duration_minutes=duration_minutes,
        latest_day=latest_day,
        applying=applying,
        opening_hours=[
            (_bound(day, rule.start, tz), _bound(day, rule.end, tz))
            for day in days
            for rule in applying[day]
        ],
        busy_minutes=_busy_minutes(busy),
    )
    minute = datetime.combine(first_day - ONE_DAY, time(0), tzinfo=tz).astimezone(UTC)
    stop = datetime.combine(last_day + 2 * ONE_DAY, time(0), tzinfo=tz).astimezone(UTC)
    slots = []
    while minute < stop:
        if minute >= earliest and agenda.is_candidate(minute) and agenda.is_free(minute):
            slots.append(minute)
        minute += MINUTE
    return slots
