"""The .ics attached to confirmations: no visit reason or specialty, only when and where."""

from django.utils import timezone
from icalendar import Calendar, Event

from booking.models import Appointment


def appointment_ics(appointment: Appointment, *, summary: str) -> bytes:
    practice = appointment.practitioner.practice
    calendar = Calendar()
    calendar.add("prodid", "-//Creneau//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"appointment-{appointment.pk}@creneau")
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
