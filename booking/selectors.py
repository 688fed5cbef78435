"""Reads of appointment data, scoped by actor and recorded (DESIGN invariants 2 and 3).

Views, API endpoints, tasks and commands read appointments only through these functions.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Role
from audit.actors import Actor
from audit.models import Action, Channel
from audit.services import record_access
from booking.errors import NotVisible
from booking.models import Appointment
from practitioners.models import StaffAccess

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class AppointmentPage:
    items: list[Appointment]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


def visible_appointments(actor: Actor) -> QuerySet[Appointment]:
    """Every appointment the actor may see, unrecorded: for building reads, never for returning."""
    appointments = Appointment.objects.all()
    if actor.is_system:
        return appointments
    user = actor.user
    if user is None or not user.is_active:
        return appointments.none()
    if user.role == Role.PATIENT:
        return appointments.filter(patient__user=user)
    if user.role == Role.PRACTITIONER:
        return appointments.filter(practitioner__user=user)
    if user.role == Role.SECRETARY:
        return appointments.filter(practitioner__staff_access__user=user)
    if user.role == Role.ADMIN and actor.channel == Channel.ADMIN:
        # Platform staff see appointment data only through the audited admin pages (DESIGN
        # actors table), never through the web pages or the API of an ordinary user.
        return appointments
    return appointments.none()


def _with_relations(appointments: QuerySet[Appointment]) -> QuerySet[Appointment]:
    return appointments.select_related(
        "practitioner__practice",
        "practitioner__specialty",
        "reason",
        "patient",
        "relative",
        "waitlist_entry",
    )


def appointments_for(
    *,
    actor: Actor,
    practitioner_id: int | None = None,
    start_from: datetime | None = None,
    start_before: datetime | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
    newest_first: bool = False,
    action: str = Action.LIST,
) -> AppointmentPage:
    """A page of the appointments the actor may see, filtered; records one event per row."""
    appointments = visible_appointments(actor)
    if practitioner_id is not None:
        appointments = appointments.filter(practitioner_id=practitioner_id)
    if start_from is not None:
        appointments = appointments.filter(start__gte=start_from)
    if start_before is not None:
        appointments = appointments.filter(start__lt=start_before)
    if status:
        appointments = appointments.filter(status=status)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    offset = max(0, offset)
    order = ("-start", "-id") if newest_first else ("start", "id")
    items = list(_with_relations(appointments).order_by(*order)[offset : offset + limit])
    total = appointments.count() if (offset or len(items) == limit) else offset + len(items)
    record_access(actor=actor, action=action, appointments=items)
    return AppointmentPage(items=items, total=total, offset=offset, limit=limit)


def access_appointment(
    *, actor: Actor, appointment_id: int, action: str = Action.VIEW, for_update: bool = False
) -> Appointment:
    """One appointment for the actor, recorded; NotVisible (404) when it may not be seen.

    `for_update=True` locks the row for a write service, which records its own action (cancel,
    reschedule, ...) in place of a view.
    """
    appointments = _with_relations(visible_appointments(actor))
    if for_update:
        appointments = appointments.select_for_update(of=("self",))
    appointment = appointments.filter(pk=appointment_id).first()
    if appointment is None:
        raise NotVisible(appointment_id=appointment_id, detail="appointment not visible to actor")
    if not for_update:
        record_access(actor=actor, action=action, appointments=[appointment])
    return appointment


def staff_level(actor: Actor, practitioner_id: int) -> str | None:
    """The actor's right on a practitioner's agenda: "manage", "view" or None."""
    if actor.is_system:
        return StaffAccess.Level.MANAGE
    user = actor.user
    if user is None or not user.is_active:
        return None
    if user.role == Role.PRACTITIONER:
        owns = getattr(getattr(user, "practitioner", None), "pk", None) == practitioner_id
        return StaffAccess.Level.MANAGE if owns else None
    if user.role == Role.SECRETARY:
        return (
            StaffAccess.objects.filter(user=user, practitioner_id=practitioner_id)
            .values_list("level", flat=True)
            .first()
        )
    return None
