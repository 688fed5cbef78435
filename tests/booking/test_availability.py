"""The availability engine: hand-computed examples, then properties against a brute-force reference.

No database: the engine is pure. The examples run against both the engine and the reference, so
the reference is itself pinned to hand-computed answers before it judges the engine.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.availability_reference import reference_free_slots
from booking.availability import (
    Interval,
    OpeningRule,
    free_slots,
    is_offered,
    opening_intervals,
)

SlotFunction = Callable[..., list[datetime]]

PARIS = ZoneInfo("Europe/Paris")
REASON = 1
OTHER_REASON = 2
QUARTER = timedelta(minutes=15)
HALF_HOUR = timedelta(minutes=30)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
MONDAY = date(2026, 6, 15)
WEDNESDAY = date(2026, 6, 17)
SUNDAY = date(2026, 6, 21)
SPRING_FORWARD = date(2026, 3, 29)  # Paris: 02:00 CET -> 03:00 CEST
FALL_BACK = date(2026, 10, 25)  # Paris: 03:00 CEST -> 02:00 CET


@pytest.fixture(params=[free_slots, reference_free_slots], ids=["engine", "reference"])
def compute(request: pytest.FixtureRequest) -> SlotFunction:
    return request.param


def paris(day: date, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, fold=fold), tzinfo=PARIS)


def hours(
    start: time, end: time, *, weekdays: Iterable[int] = range(7), **options: Any
) -> list[OpeningRule]:
    return [OpeningRule(weekday=day, start=start, end=end, **options) for day in weekdays]


def slots_of(compute: SlotFunction, **overrides: Any) -> list[datetime]:
    arguments: dict[str, Any] = {
        "busy": [],
        "reason_id": REASON,
        "duration": QUARTER,
        "tz": PARIS,
        "first_day": MONDAY,
        "last_day": SUNDAY,
        "earliest": LONG_AGO,
    }
    return compute(**(arguments | overrides))


def walls(slots: Iterable[datetime]) -> list[str]:
    return [slot.astimezone(PARIS).strftime("%a %H:%M") for slot in slots]


def quarters(day: str, start: time, end: time) -> list[str]:
    """Wall-clock labels of the 15-minute grid of [start, end) on `day` ("Mon")."""
    minute, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    return [f"{day} {m // 60:02d}:{m % 60:02d}" for m in range(minute, last, 15)]


def test_open_days_offer_every_grid_slot_that_ends_by_closing(compute: SlotFunction) -> None:
    rules = hours(time(9), time(10, 10), weekdays=range(5))

    slots = slots_of(compute, rules=rules, duration=HALF_HOUR)

    days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert walls(slots) == [f"{day} {at}" for day in days for at in ("09:00", "09:30")]
    assert slots[0] == datetime(2026, 6, 15, 7, 0, tzinfo=UTC)
    assert all(slot.tzinfo is UTC for slot in slots)


def test_absence_removes_the_slots_it_overlaps(compute: SlotFunction) -> None:
    absence = Interval(paris(MONDAY, 10), paris(MONDAY, 11, 5))

    slots = slots_of(
        compute, rules=hours(time(9), time(12), weekdays=[0]), busy=[absence], last_day=MONDAY
    )

    assert walls(slots) == quarters("Mon", time(9), time(10)) + quarters(
        "Mon", time(11, 15), time(12)
    )


def test_busy_period_ending_at_a_slot_start_leaves_it_free(compute: SlotFunction) -> None:
    before_opening = Interval(paris(MONDAY, 8), paris(MONDAY, 9))

    slots = slots_of(compute, rules=hours(time(9), time(10), weekdays=[0]), busy=[before_opening])

    assert walls(slots) == quarters("Mon", time(9), time(10))


def test_thirty_minute_reason_skips_slots_overlapping_a_quarter_hour_booking(
    compute: SlotFunction,
) -> None:
    booking = Interval(paris(MONDAY, 9, 45), paris(MONDAY, 10))

    slots = slots_of(
        compute,
        rules=hours(time(9), time(11), weekdays=[0]),
        busy=[booking],
        duration=HALF_HOUR,
    )

    assert walls(slots) == ["Mon 09:00", "Mon 10:00", "Mon 10:30"]


def test_minimum_notice_hides_slots_starting_before_earliest(compute: SlotFunction) -> None:
    rules = hours(time(9), time(11), weekdays=[0])

    after_ten = slots_of(compute, rules=rules, earliest=paris(MONDAY, 10, 5))
    at_quarter_past = slots_of(compute, rules=rules, earliest=paris(MONDAY, 10, 15))

    assert walls(after_ten) == ["Mon 10:15", "Mon 10:30", "Mon 10:45"]
    assert after_ten == at_quarter_past


def test_horizon_stops_at_latest_day(compute: SlotFunction) -> None:
    slots = slots_of(compute, rules=hours(time(9), time(9, 30)), latest_day=WEDNESDAY)

    assert walls(slots) == [
        "Mon 09:00",
        "Mon 09:15",
        "Tue 09:00",
        "Tue 09:15",
        "Wed 09:00",
        "Wed 09:15",
    ]


def test_hours_restricted_to_another_reason_offer_nothing_for_this_one(
    compute: SlotFunction,
) -> None:
    rules = hours(time(9), time(9, 30), weekdays=[0], reason_ids=frozenset({OTHER_REASON}))

    assert slots_of(compute, rules=rules) == []
    assert walls(slots_of(compute, rules=rules, reason_id=OTHER_REASON)) == [
        "Mon 09:00",
        "Mon 09:15",
    ]


def test_validity_period_bounds_are_inclusive(compute: SlotFunction) -> None:
    rules = hours(
        time(9), time(9, 15), valid_from=MONDAY + timedelta(days=1), valid_until=WEDNESDAY
    )

    assert walls(slots_of(compute, rules=rules)) == ["Tue 09:00", "Wed 09:00"]


def test_no_rules_means_no_slots(compute: SlotFunction) -> None:
    assert slots_of(compute, rules=[]) == []


def test_overlapping_rules_offer_each_slot_once(compute: SlotFunction) -> None:
    rules = hours(time(9), time(10), weekdays=[0]) + hours(time(9, 30), time(10, 30), weekdays=[0])

    assert walls(slots_of(compute, rules=rules)) == quarters("Mon", time(9), time(10, 30))


def test_empty_busy_period_blocks_nothing(compute: SlotFunction) -> None:
    empty = Interval(paris(MONDAY, 9, 5), paris(MONDAY, 9, 5))

    slots = slots_of(compute, rules=hours(time(9), time(9, 30), weekdays=[0]), busy=[empty])

    assert walls(slots) == ["Mon 09:00", "Mon 09:15"]


NORMAL_HOURS = hours(time(8), time(12)) + hours(time(14), time(19))
NORMAL_DAY = quarters("", time(8), time(12)) + quarters("", time(14), time(19))


@pytest.mark.parametrize(
    ("saturday", "utc_hour_of_eight_am"),
    [
        (SPRING_FORWARD - timedelta(days=1), {"Sat": 7, "Sun": 6, "Mon": 6}),
        (FALL_BACK - timedelta(days=1), {"Sat": 6, "Sun": 7, "Mon": 7}),
    ],
    ids=["spring", "autumn"],
)
def test_dst_weekend_keeps_normal_hours(
    compute: SlotFunction, saturday: date, utc_hour_of_eight_am: dict[str, int]
) -> None:
    slots = slots_of(
        compute, rules=NORMAL_HOURS, first_day=saturday, last_day=saturday + timedelta(days=2)
    )

    by_day = {
        day: list(day_slots)
        for day, day_slots in groupby(slots, key=lambda s: s.astimezone(PARIS).strftime("%a"))
    }
    assert list(by_day) == ["Sat", "Sun", "Mon"]
    for day, day_slots in by_day.items():
        assert [label.removeprefix(day) for label in walls(day_slots)] == NORMAL_DAY
        assert day_slots[0].hour == utc_hour_of_eight_am[day]


def test_spring_forward_night_skips_the_missing_wall_clock_hour(compute: SlotFunction) -> None:
    rules = hours(time(1), time(4), weekdays=[6])

    slots = slots_of(
        compute,
        rules=rules,
        duration=HALF_HOUR,
        first_day=SPRING_FORWARD,
        last_day=SPRING_FORWARD,
    )

    assert walls(slots) == ["Sun 01:00", "Sun 01:30", "Sun 03:00", "Sun 03:30"]
    assert [slot.strftime("%H:%M") for slot in slots] == ["00:00", "00:30", "01:00", "01:30"]


def test_fall_back_night_offers_each_wall_clock_time_once(compute: SlotFunction) -> None:
    rules = hours(time(1), time(4), weekdays=[6])

    slots = slots_of(
        compute, rules=rules, duration=HALF_HOUR, first_day=FALL_BACK, last_day=FALL_BACK
    )

    labels = ["01:00", "01:30", "02:00", "02:30", "03:00", "03:30"]
    assert walls(slots) == [f"Sun {label}" for label in labels]
    # fold=0: the first pass through 02:00-03:00; the second pass (01:00-02:00 UTC) offers nothing.
    utc = ["24 23:00", "24 23:30", "25 00:00", "25 00:30", "25 02:00", "25 02:30"]
    assert [slot.strftime("%d %H:%M") for slot in slots] == utc


@pytest.mark.parametrize(
    ("busy_from", "busy_until", "blocked"),
    [
        (paris(FALL_BACK, 2, fold=1), paris(FALL_BACK, 2, 30, fold=1), []),
        (paris(FALL_BACK, 2, 40), paris(FALL_BACK, 2, 10, fold=1), ["Sun 02:30"]),
    ],
    ids=["second-pass", "first-to-second-pass"],
)
def test_local_busy_period_in_the_repeated_hour_is_compared_as_instants(
    compute: SlotFunction, busy_from: datetime, busy_until: datetime, blocked: list[str]
) -> None:
    # Same-tzinfo comparisons ignore fold: compared as wall-clock readings, the first period
    # would block the 02:00 (fold=0) slot and the second would look empty.
    rules = hours(time(1), time(4), weekdays=[6])

    slots = slots_of(
        compute,
        rules=rules,
        busy=[Interval(busy_from, busy_until)],
        duration=HALF_HOUR,
        first_day=FALL_BACK,
        last_day=FALL_BACK,
    )

    labels = ["01:00", "01:30", "02:00", "02:30", "03:00", "03:30"]
    assert walls(slots) == [f"Sun {label}" for label in labels if f"Sun {label}" not in blocked]


def test_opening_time_inside_the_spring_gap_reads_at_the_old_offset(compute: SlotFunction) -> None:
    # 02:30 does not exist that night; fold=0 reads it at +01:00, i.e. 03:30 CEST (as RFC 5545).
    rules = hours(time(2, 30), time(4, 30), weekdays=[6])

    slots = slots_of(
        compute,
        rules=rules,
        duration=HALF_HOUR,
        first_day=SPRING_FORWARD,
        last_day=SPRING_FORWARD,
    )

    assert walls(slots) == ["Sun 03:30", "Sun 04:00"]


def test_slot_across_the_spring_gap_needs_the_practice_open_until_its_real_end(
    compute: SlotFunction,
) -> None:
    # 01:30 + 1 h of real time ends at 03:30 CEST on the clock, half an hour after closing.
    night = hours(time(1, 30), time(3), weekdays=[6])
    extended = night + hours(time(3), time(3, 30), weekdays=[6])
    options: dict[str, Any] = {
        "duration": timedelta(hours=1),
        "first_day": SPRING_FORWARD,
        "last_day": SPRING_FORWARD,
    }

    assert slots_of(compute, rules=night, **options) == []
    assert walls(slots_of(compute, rules=extended, **options)) == ["Sun 01:30"]


def test_is_offered_accepts_a_free_grid_slot_only() -> None:
    options: dict[str, Any] = {
        "rules": hours(time(9), time(10), weekdays=[0]),
        "busy": [Interval(paris(MONDAY, 9, 15), paris(MONDAY, 9, 30))],
        "reason_id": REASON,
        "duration": QUARTER,
        "tz": PARIS,
        "earliest": LONG_AGO,
    }

    assert is_offered(start=paris(MONDAY, 9), **options)
    assert is_offered(start=paris(MONDAY, 9, 30).astimezone(UTC), **options)
    assert not is_offered(start=paris(MONDAY, 9, 15), **options)  # booked
    assert not is_offered(start=paris(MONDAY, 9, 5), **options)  # off the grid
    beyond_horizon = options | {"latest_day": MONDAY - timedelta(days=1)}
    assert not is_offered(start=paris(MONDAY, 9, 45), **beyond_horizon)


def test_is_offered_knows_the_two_passes_of_the_repeated_hour_apart() -> None:
    options: dict[str, Any] = {
        "rules": hours(time(1), time(4), weekdays=[6]),
        "busy": [],
        "reason_id": REASON,
        "duration": HALF_HOUR,
        "tz": PARIS,
        "earliest": LONG_AGO,
    }

    assert is_offered(start=paris(FALL_BACK, 2), **options)
    assert not is_offered(start=paris(FALL_BACK, 2, fold=1), **options)


def test_non_positive_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        free_slots(
            rules=[],
            busy=[],
            reason_id=REASON,
            duration=timedelta(0),
            tz=PARIS,
            first_day=MONDAY,
            last_day=MONDAY,
            earliest=LONG_AGO,
        )


# Properties: random agendas around the DST changes of zones whose changes fall on different dates
# (Paris: 03-29 / 10-25, New York: 03-08 / 11-01) and of one without DST (Tokyo).

SUMMER_DAY = date(2026, 6, 17)
PARIS_AND_NEW_YORK = {  # the days whose small hours have a gap or a repeated hour
    PARIS: (SPRING_FORWARD, FALL_BACK),
    ZoneInfo("America/New_York"): (date(2026, 3, 8), date(2026, 11, 1)),
}
TOKYO = {ZoneInfo("Asia/Tokyo"): (SPRING_FORWARD, FALL_BACK)}  # no DST: ordinary days
DURATIONS = (10, 15, 20, 30, 45, 60)
REASON_SETS = (frozenset(), frozenset({REASON}), frozenset({OTHER_REASON}))
LAST_OPENING = 23 * 60 + 50  # minutes; closing must stay on the same day


def clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


@st.composite
def opening_rules(draw: st.DrawFn, *, days: list[date], night: date | None) -> OpeningRule:
    """Hours on any of `days`, or, given a `night`, hours of that day that start by 04:00."""
    if night is not None:
        start = 5 * draw(st.integers(0, 48))
        end = start + 5 * draw(st.integers(1, 48))
        return OpeningRule(weekday=night.weekday(), start=clock(start), end=clock(end))
    start = 5 * draw(st.integers(0, LAST_OPENING // 5))
    end = min(start + 5 * draw(st.integers(1, 12) | st.integers(1, 120)), LAST_OPENING + 5)
    return OpeningRule(
        weekday=draw(st.sampled_from(days).map(date.weekday) | st.integers(0, 6)),
        start=clock(start),
        end=clock(end),
        valid_from=draw(st.none() | st.sampled_from(days)),
        valid_until=draw(st.none() | st.sampled_from(days)),
        reason_ids=draw(st.sampled_from(REASON_SETS)),
    )


def five_minute_steps(
    origin: datetime, steps: st.SearchStrategy[int]
) -> st.SearchStrategy[datetime]:
    # On the rules' 5-minute grid, so that busy periods and notices often touch slot bounds exactly.
    return steps.map(lambda n: origin + n * timedelta(minutes=5))


@st.composite
def busy_periods(
    draw: st.DrawFn, *, tz: ZoneInfo, window_start: datetime, night: datetime, minutes: int
) -> Interval:
    anywhere = five_minute_steps(window_start, st.integers(-24, minutes // 5))
    start = draw(anywhere | five_minute_steps(night, st.integers(0, 60)))
    end = start + timedelta(minutes=5 * draw(st.integers(0, 36)))
    # Periods in local time check that the engine compares instants, not wall-clock readings.
    if draw(st.booleans()):
        return Interval(start.astimezone(tz), end.astimezone(tz))
    return Interval(start, end)


@st.composite
def agendas(
    draw: st.DrawFn, *, zones: dict[ZoneInfo, tuple[date, ...]], night: bool
) -> dict[str, Any]:
    """Keyword arguments for `free_slots`: 1-4 days around an anchor day of one of `zones`.

    With `night`, the hours all fall in the anchor's small hours, where the clocks change.
    """
    tz = draw(st.sampled_from(list(zones)))
    anchor = draw(st.sampled_from(zones[tz]))
    days_before = draw(st.integers(0, 3))
    first_day = anchor - timedelta(days=days_before)
    days = [first_day + timedelta(days=n) for n in range(draw(st.integers(days_before + 1, 4)))]
    window_start = datetime.combine(first_day, time(0), tzinfo=tz).astimezone(UTC)
    anchor_start = datetime.combine(anchor, time(0), tzinfo=tz).astimezone(UTC)
    minutes = len(days) * 24 * 60
    rules = opening_rules(days=days, night=anchor if night else None)
    periods = busy_periods(tz=tz, window_start=window_start, night=anchor_start, minutes=minutes)
    no_notice = five_minute_steps(window_start, st.integers(-12, 0))
    return {
        "rules": draw(st.lists(rules, min_size=1, max_size=4)),
        "busy": draw(st.lists(periods, max_size=6)),
        "reason_id": REASON,
        "duration": timedelta(minutes=draw(st.sampled_from(DURATIONS))),
        "tz": tz,
        "first_day": first_day,
        "last_day": days[-1],
        "earliest": draw(no_notice | five_minute_steps(window_start, st.integers(0, minutes // 5))),
        "latest_day": draw(st.none() | st.sampled_from(days)),
    }


ANY_AGENDA = agendas(zones=PARIS_AND_NEW_YORK | TOKYO, night=False)
CLOCK_CHANGE_NIGHT = agendas(zones=PARIS_AND_NEW_YORK, night=True)


@settings(max_examples=200, deadline=None)
@given(agenda=ANY_AGENDA)
def test_engine_matches_the_minute_by_minute_reference(agenda: dict[str, Any]) -> None:
    assert free_slots(**agenda) == reference_free_slots(**agenda)


@settings(max_examples=200, deadline=None)
@given(agenda=CLOCK_CHANGE_NIGHT)
def test_engine_matches_the_reference_on_clock_change_nights(agenda: dict[str, Any]) -> None:
    assert free_slots(**agenda) == reference_free_slots(**agenda)


@settings(max_examples=300, deadline=None)
@given(agenda=ANY_AGENDA | CLOCK_CHANGE_NIGHT)
def test_slots_are_sorted_unique_utc_free_and_within_the_window(agenda: dict[str, Any]) -> None:
    slots = free_slots(**agenda)

    busy = [period for period in agenda["busy"] if period.start < period.end]
    last_day = agenda["latest_day"] or agenda["last_day"]
    assert all(earlier < later for earlier, later in pairwise(slots))
    for start in slots:
        end = start + agenda["duration"]
        assert start.tzinfo is UTC
        assert start >= agenda["earliest"]
        assert agenda["first_day"] <= start.astimezone(agenda["tz"]).date() <= last_day
        assert not any(period.start < end and start < period.end for period in busy)


@settings(max_examples=200, deadline=None)
@given(agenda=ANY_AGENDA | CLOCK_CHANGE_NIGHT)
def test_opening_intervals_are_sorted_disjoint_and_not_touching(agenda: dict[str, Any]) -> None:
    keys = ("rules", "reason_id", "tz", "first_day", "last_day")
    intervals = opening_intervals(**{key: agenda[key] for key in keys})

    assert all(interval.start < interval.end for interval in intervals)
    assert all(interval.start.tzinfo is UTC for interval in intervals)
    assert all(earlier.end < later.start for earlier, later in pairwise(intervals))
