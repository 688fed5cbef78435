"""The .ics attached to confirmations: no visit reason or specialty, only when and where."""

from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event

from booking.models import Appointment


def _lineage(appointment: Appointment) -> tuple[Appointment, int]:
    """The first appointment of a chain of reschedules, and how many moves led here. A moved
    appointment keeps the UID of the first one with a higher SEQUENCE, so the patient's calendar
    moves the event it already has instead of adding a second one at the old time."""
    first, moves = appointment, 0
    while first.rescheduled_from_id is not None:
        first = first.rescheduled_from  # type: ignore[assignment]  # one query a move; moves are few
        moves += 1
    return first, moves


def site_domain() -> str:
    """This installation's host: Message-IDs and calendar UIDs must not collide with those of
    another Creneau installation the same patient uses."""
    return urlsplit(settings.CRENEAU_BASE_URL).hostname or "creneau.invalid"


def appointment_ics(appointment: Appointment, *, summary: str) -> bytes:
    practice = appointment.practitioner.practice
    first, moves = _lineage(appointment)
    calendar = Calendar()
    calendar.add("prodid", "-//Creneau//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"appointment-{first.pk}@{site_domain()}")
    event.add("sequence", moves)
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.start)
    event.add("dtend", appointment.end)
    event.add("summary", summary)
    event.add(
        "location", f"{practice.name}, {practice.address}, {practice.postcode} {practice.city}"
    )
    event.add("status", "CANCELLED" if not appointment.is_active else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()
