"""Schedules and Slots: ids, and free slots from the availability engine.

One Schedule per practitioner and visit reason (`<practitioner>-<reason>`): the engine computes
slots per reason (its duration, the hours open to it), so a Schedule's slots never overlap and
have one length, and a Slot search needs no service-type filter to make sense. Slot ids are
`<practitioner>-<reason>-<UTC start as yyyymmddHHMM>`: stable, so `Slot/{id}` and a booking
that references the slot round-trip without any stored slot row.

An integration acts for the practice that granted it (it books as the practice's staff do), so
its slots are the staff's: every active reason, from now on, without the online minimum notice.
"""

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from booking.slots import booking_window, compute_slots, load_schedules
from practitioners.models import VisitReason

_SCHEDULE_ID = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")
_SLOT_ID = re.compile(r"([0-9]{1,18})-([0-9]{1,18})-([0-9]{12})")
_START_FORMAT = "%Y%m%d%H%M"


def schedule_id(practitioner_id: int, reason_id: int) -> str:
    return f"{practitioner_id}-{reason_id}"


def slot_id(practitioner_id: int, reason_id: int, start: datetime) -> str:
    return f"{practitioner_id}-{reason_id}-{start.astimezone(UTC).strftime(_START_FORMAT)}"


def parse_schedule_id(value: str) -> tuple[int, int] | None:
    match = _SCHEDULE_ID.fullmatch(value)
    return (int(match[1]), int(match[2])) if match else None


def parse_slot_id(value: str) -> tuple[int, int, datetime] | None:
    match = _SLOT_ID.fullmatch(value)
    if match is None:
        return None
    try:
        start = datetime.strptime(match[3], _START_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(match[1]), int(match[2]), start


def schedule_reason(practitioner_id: int, reason_id: int) -> VisitReason | None:
    """The active reason a Schedule stands for, with its practitioner and practice."""
    return (
        VisitReason.objects.select_related("practitioner__practice")
        .filter(pk=reason_id, practitioner_id=practitioner_id, active=True)
        .first()
    )


def free_starts(*, reason: VisitReason, lower: datetime, upper: datetime) -> list[datetime]:
    """Free slot starts (UTC) of the reason's schedule in [lower, upper): one schedule load."""
    practitioner = reason.practitioner
    tz = practitioner.practice.tz
    first_day = lower.astimezone(tz).date()
    last_day = (upper - timedelta(microseconds=1)).astimezone(tz).date()
    schedule = load_schedules([practitioner], first_day, last_day)[practitioner.pk]
    starts = compute_slots(
        practitioner=practitioner,
        reason=reason,
        schedule=schedule,
        first_day=first_day,
        last_day=last_day,
        window=booking_window(practitioner, now=timezone.now(), for_staff=True),
    )
    return [start for start in starts if lower <= start < upper]
