"""Availability engine: the slot starts a practitioner can still offer for one visit reason.

Pure functions over plain values (no ORM), so the search page, the booking service and the
benchmark share one definition, and it can be checked against a brute-force reference.

Opening hours are naive local wall-clock times; every instant returned is UTC. A wall-clock time
becomes an instant with fold=0, i.e. the first occurrence of an ambiguous autumn time, so no slot is
ever offered twice; a wall-clock time inside the spring-forward gap is never a slot start.
"""

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class OpeningRule:
    """One weekly-hours row: `start` < `end` on the same local day, validity dates inclusive."""

    weekday: int  # date.weekday(): 0 = Monday
    start: time
    end: time
    valid_from: date | None = None
    valid_until: date | None = None
    reason_ids: frozenset[int] = frozenset()  # empty: every reason

    def applies(self, day: date, reason_id: int) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
            and (not self.reason_ids or reason_id in self.reason_ids)
        )


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open period [start, end) between aware datetimes."""

    start: datetime
    end: datetime


class _Timeline:
    """Sorted, disjoint, non-touching intervals, searched with bisect."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Sequence[Interval]) -> None:
        self._starts = [interval.start for interval in intervals]
        self._ends = [interval.end for interval in intervals]

    def covers(self, start: datetime, end: datetime) -> bool:
        # Touching intervals were merged, so a covered period lies inside a single one.
        index = bisect_right(self._starts, start) - 1
        return index >= 0 and end <= self._ends[index]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        index = bisect_right(self._ends, start)  # the first interval ending after `start`
        return index < len(self._starts) and self._starts[index] < end


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals, in UTC, as sorted disjoint non-touching intervals."""
    # Same-tzinfo comparisons ignore fold, which would misorder local times in a repeated hour.
    utc = [Interval(i.start.astimezone(UTC), i.end.astimezone(UTC)) for i in intervals]
    merged: list[Interval] = []
    for interval in sorted((i for i in utc if i.start < i.end), key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def _applying(
    *, rules: Sequence[OpeningRule], reason_id: int, first_day: date, last_day: date
) -> Iterator[tuple[date, OpeningRule]]:
    day = first_day
    while day <= last_day:
        for rule in rules:
            if rule.applies(day, reason_id):
                yield day, rule
        day += ONE_DAY


def _instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    # fold=0; a time in the spring gap takes the offset in force before it (PEP 495).
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def opening_intervals(
    *, rules: Sequence[OpeningRule], reason_id: int, tz: ZoneInfo, first_day: date, last_day: date
) -> list[Interval]:
    """The merged UTC intervals during which the practice is open for `reason_id`.

    first_day..last_day inclusive are local dates in `tz`.
    """
    return _merge(
        Interval(_instant(day, rule.start, tz), _instant(day, rule.end, tz))
        for day, rule in _applying(
            rules=rules, reason_id=reason_id, first_day=first_day, last_day=last_day
        )
    )


def _candidate_starts(
    *,
    rules: Sequence[OpeningRule],
    reason_id: int,
    duration: timedelta,
    tz: ZoneInfo,
    first_day: date,
    last_day: date,
) -> set[datetime]:
    """UTC instants of the wall-clock grids of the applying rules; a set, as rules may overlap."""
    starts: set[datetime] = set()
    for day, rule in _applying(
        rules=rules, reason_id=reason_id, first_day=first_day, last_day=last_day
    ):
        wall = datetime.combine(day, rule.start)
        closing = datetime.combine(day, rule.end)
        while wall + duration <= closing:
            instant = wall.replace(tzinfo=tz).astimezone(UTC)
            if instant.astimezone(tz).replace(tzinfo=None) == wall:  # else: in the spring gap
                starts.add(instant)
            wall += duration
    return starts


def free_slots(
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
    """Free slot starts (aware, UTC) of one practitioner for one reason, sorted ascending.

    first_day..last_day inclusive are local dates in `tz`. `earliest` is now + minimum notice: no
    slot starts before it. `latest_day` is the last local date the booking horizon allows (None: no
    limit). `busy` holds absences and active appointments, in any order; empty ones block nothing.
    """
    if duration <= timedelta(0):
        raise ValueError(f"duration must be positive, got {duration}")
    opening = _Timeline(
        opening_intervals(
            rules=rules, reason_id=reason_id, tz=tz, first_day=first_day, last_day=last_day
        )
    )
    blocked = _Timeline(_merge(busy))
    candidates = _candidate_starts(
        rules=rules,
        reason_id=reason_id,
        duration=duration,
        tz=tz,
        first_day=first_day,
        last_day=last_day if latest_day is None else min(last_day, latest_day),
    )
    return [
        start
        for start in sorted(candidates)
        if start >= earliest
        and opening.covers(start, start + duration)
        and not blocked.overlaps(start, start + duration)
    ]


def is_offered(
    *,
    start: datetime,
    rules: Sequence[OpeningRule],
    busy: Sequence[Interval],
    reason_id: int,
    duration: timedelta,
    tz: ZoneInfo,
    earliest: datetime,
    latest_day: date | None = None,
) -> bool:
    """Whether `start` (aware) is one of the free slots: the check to repeat before booking."""
    # Equality of a fold=1 local time with a UTC one is always False (PEP 495): compare in UTC.
    start = start.astimezone(UTC)
    day = start.astimezone(tz).date()
    # The neighbouring days count too: their opening hours could adjoin this day's in real time.
    slots = free_slots(
        rules=rules,
        busy=busy,
        reason_id=reason_id,
        duration=duration,
        tz=tz,
        first_day=day - ONE_DAY,
        last_day=day + ONE_DAY,
        earliest=earliest,
        latest_day=latest_day,
    )
    index = bisect_right(slots, start) - 1
    return index >= 0 and slots[index] == start
