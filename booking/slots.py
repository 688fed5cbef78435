"""Free slots from the database: loads the availability engine's inputs and runs it.

Slots carry no personal data, so these reads are public and not audited; appointments are read
for their times only.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from booking.availability import Interval, OpeningRule, free_slots
from booking.models import ACTIVE_STATUSES, Appointment
from practitioners.models import Absence, Practitioner, VisitReason, WeeklyHours


@dataclass(frozen=True)
class Schedule:
    """Everything the engine needs about one practitioner over a window."""

    rules: list[OpeningRule]
    absences: list[Interval]
    appointments: list[Interval]

    @property
    def busy(self) -> list[Interval]:
        return sorted(self.absences + self.appointments, key=lambda interval: interval.start)


def _window(
    practitioner: Practitioner, first_day: date, last_day: date
) -> tuple[datetime, datetime]:
    # A day of margin on each side: a slot's local day and its UTC instants may differ by a day.
    tz = practitioner.practice.tz
    start = datetime.combine(first_day - timedelta(days=1), time.min, tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=2), time.min, tzinfo=tz)
    return start, end


def opening_rules(hours: Iterable[WeeklyHours]) -> list[OpeningRule]:
    return [
        OpeningRule(
            weekday=row.weekday,
            start=row.start_time,
            end=row.end_time,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            reason_ids=frozenset(reason.pk for reason in row.reasons.all()),
        )
        for row in hours
    ]


def load_schedules(
    practitioners: Sequence[Practitioner],
    first_day: date,
    last_day: date,
    *,
    with_appointments: bool = True,
) -> dict[int, Schedule]:
    """Schedules of several practitioners in three queries (plus one for hour restrictions).

    `with_appointments=False` skips the appointments, for a caller that checks them itself.
    """
    if not practitioners:
        return {}
    ids = [p.pk for p in practitioners]
    windows = [_window(p, first_day, last_day) for p in practitioners]
    window_start, window_end = min(w[0] for w in windows), max(w[1] for w in windows)
    hours = WeeklyHours.objects.filter(practitioner_id__in=ids).prefetch_related("reasons")
    rules: dict[int, list[WeeklyHours]] = defaultdict(list)
    for row in hours:
        rules[row.practitioner_id].append(row)
    absences: dict[int, list[Interval]] = defaultdict(list)
    for practitioner_id, start, end in Absence.objects.filter(
        practitioner_id__in=ids, start__lt=window_end, end__gt=window_start
    ).values_list("practitioner_id", "start", "end"):
        absences[practitioner_id].append(Interval(start, end))
    booked: dict[int, list[Interval]] = defaultdict(list)
    appointments = Appointment.objects.filter(
        practitioner_id__in=ids,
        status__in=ACTIVE_STATUSES,
        start__lt=window_end,
        end__gt=window_start,
    )
    for practitioner_id, start, end in (
        appointments.values_list("practitioner_id", "start", "end") if with_appointments else []
    ):
        booked[practitioner_id].append(Interval(start, end))
    return {pk: Schedule(opening_rules(rules[pk]), absences[pk], booked[pk]) for pk in ids}


# Staff are not bound by the practitioner's online horizon, but a start years ahead is a typo, and
# an unbounded window lets a start near year 9999 overflow the date arithmetic below.
STAFF_HORIZON_DAYS = 2 * 366


@dataclass(frozen=True)
class BookingWindow:
    earliest: datetime
    latest_day: date | None

    def admits(self, start: datetime, *, tz: ZoneInfo) -> bool:
        """Whether `start` lies in the window; cheap, so callers check it before any query."""
        if start < self.earliest:
            return False
        if self.latest_day is None:
            return True
        return start < datetime.combine(self.latest_day + timedelta(days=1), time.min, tzinfo=tz)


def booking_window(
    practitioner: Practitioner, *, now: datetime, for_staff: bool = False
) -> BookingWindow:
    """Patients book from now + minimum notice up to the horizon; staff from now, up to
    STAFF_HORIZON_DAYS."""
    today = now.astimezone(practitioner.practice.tz).date()
    if for_staff:
        return BookingWindow(earliest=now, latest_day=today + timedelta(days=STAFF_HORIZON_DAYS))
    return BookingWindow(
        earliest=now + practitioner.minimum_notice,
        latest_day=today + timedelta(days=practitioner.booking_horizon_days),
    )


def compute_slots(
    *,
    practitioner: Practitioner,
    reason: VisitReason,
    schedule: Schedule,
    first_day: date,
    last_day: date,
    window: BookingWindow,
    include_appointments: bool = True,
) -> list[datetime]:
    busy = schedule.busy if include_appointments else schedule.absences
    return free_slots(
        rules=schedule.rules,
        busy=busy,
        reason_id=reason.pk,
        duration=reason.duration,
        tz=practitioner.practice.tz,
        first_day=first_day,
        last_day=last_day,
        earliest=window.earliest,
        latest_day=window.latest_day,
    )


def free_slots_for(
    *,
    practitioner: Practitioner,
    reason: VisitReason,
    first_day: date,
    days: int,
    now: datetime | None = None,
    for_staff: bool = False,
) -> list[datetime]:
    """Free slot starts (UTC) for `days` local days from `first_day`."""
    now = now or timezone.now()
    last_day = first_day + timedelta(days=days - 1)
    schedule = load_schedules([practitioner], first_day, last_day)[practitioner.pk]
    return compute_slots(
        practitioner=practitioner,
        reason=reason,
        schedule=schedule,
        first_day=first_day,
        last_day=last_day,
        window=booking_window(practitioner, now=now, for_staff=for_staff),
    )


def next_available(
    practitioners: Sequence[Practitioner], *, now: datetime | None = None, search_days: int = 28
) -> dict[int, datetime | None]:
    """The earliest slot of each practitioner, over any online-bookable reason, in `search_days`.

    Loads every schedule in one batch; reasons must be prefetched as `online_reasons`.
    """
    now = now or timezone.now()
    result: dict[int, datetime | None] = {}
    by_tz: dict[str, list[Practitioner]] = defaultdict(list)
    for practitioner in practitioners:
        by_tz[practitioner.practice.timezone].append(practitioner)
    for group in by_tz.values():
        first_day = now.astimezone(group[0].practice.tz).date()
        last_day = first_day + timedelta(days=search_days - 1)
        schedules = load_schedules(group, first_day, last_day)
        for practitioner in group:
            window = booking_window(practitioner, now=now)
            starts = [
                slots[0]
                for reason in practitioner.online_reasons  # type: ignore[attr-defined]
                if (
                    slots := compute_slots(
                        practitioner=practitioner,
                        reason=reason,
                        schedule=schedules[practitioner.pk],
                        first_day=first_day,
                        last_day=last_day,
                        window=window,
                    )
                )
            ]
            result[practitioner.pk] = min(starts) if starts else None
    return result
