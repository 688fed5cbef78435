"""Reads of appointment data, scoped by actor and recorded (DESIGN invariants 2 and 3).

Views, API endpoints, tasks and commands read appointments only through these functions.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Role
from audit.actors import Actor
from audit.models import Action, Channel
from audit.services import record_access
from booking.errors import NotAllowed, NotVisible
from booking.models import Appointment
from integrations.grants import granted_practitioner_ids
from integrations.scopes import APPOINTMENT_READ
from practitioners.models import Practitioner, StaffAccess

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
    if actor.integration_id is not None:
        # Only the practitioners who granted it Appointment.read, within its token's scopes.
        return appointments.filter(
            practitioner_id__in=granted_practitioner_ids(
                integration_id=actor.integration_id,
                scope=APPOINTMENT_READ,
                token_scopes=actor.scopes,
            )
        )
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


# --- The agenda pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Agenda:
    """A practitioner's agenda as one actor may open it, with their right on it."""

    practitioner: Practitioner
    level: str

    @property
    def manages(self) -> bool:
        return self.level == StaffAccess.Level.MANAGE


def agendas_for(actor: Actor) -> list[Agenda]:
    """Every agenda the actor may open, in one query: a practitioner's own, a secretary's grants.

    Same rule as `staff_level`, for many practitioners at once.
    """
    user = actor.user
    if user is None or not user.is_active:
        return []
    practitioners = Practitioner.objects.select_related("practice", "specialty")
    if user.role == Role.PRACTITIONER:
        own = practitioners.filter(user=user).first()
        return [Agenda(own, StaffAccess.Level.MANAGE)] if own is not None else []
    if user.role == Role.SECRETARY:
        grants = (
            StaffAccess.objects.filter(user=user)
            .select_related("practitioner__practice", "practitioner__specialty")
            .order_by("practitioner__last_name", "practitioner__first_name", "practitioner_id")
        )
        return [Agenda(grant.practitioner, grant.level) for grant in grants]
    return []


def access_agendas(*, actor: Actor, practitioner_ids: Collection[int]) -> list[Agenda]:
    """The agendas asked for, or every one the actor may open when none is asked for.

    NotVisible (404) when any asked for is not the actor's to open: another practitioner's
    agenda does not exist for them.
    """
    return choose_agendas(agendas_for(actor), practitioner_ids)


def choose_agendas(agendas: list[Agenda], practitioner_ids: Collection[int]) -> list[Agenda]:
    """Those of `agendas` (the actor's, from agendas_for) asked for; all when none is."""
    if not practitioner_ids:
        return agendas
    by_id = {agenda.practitioner.pk: agenda for agenda in agendas}
    if any(pk not in by_id for pk in practitioner_ids):
        raise NotVisible(detail="agenda not visible to actor")
    return [by_id[pk] for pk in dict.fromkeys(practitioner_ids)]


def access_managed_agenda(*, actor: Actor, practitioner_id: int) -> Agenda:
    """One agenda the actor may change: NotVisible (404) if not theirs, NotAllowed (403) if
    they may only view it."""
    (agenda,) = access_agendas(actor=actor, practitioner_ids=[practitioner_id])
    if not agenda.manages:
        raise NotAllowed(_("You may view this agenda but not change it."))
    return agenda


def ensure_manages_appointment(*, actor: Actor, appointment_id: int) -> None:
    """NotVisible (404) unless the actor may see the appointment, NotAllowed (403) unless they
    may change its agenda. Reads only the agenda's id, so nothing is recorded here: the service
    that acts records the access, the page handler the refusal."""
    practitioner_id = (
        visible_appointments(actor)
        .filter(pk=appointment_id)
        .values_list("practitioner_id", flat=True)
        .first()
    )
    if practitioner_id is None:
        raise NotVisible(appointment_id=appointment_id, detail="appointment not visible to actor")
    if staff_level(actor, practitioner_id) != StaffAccess.Level.MANAGE:
        raise NotAllowed(
            _("You may view this agenda but not change it."), appointment_id=appointment_id
        )


AGENDA_DEFERRED = (
    "patient__birth_date",
    "patient__phone",
    "patient__phone_index",
    "patient__email",
    "patient__email_index",
    "relative__birth_date",
)


def agenda_appointments(
    *,
    actor: Actor,
    practitioner_ids: Collection[int],
    start_from: datetime,
    start_before: datetime,
) -> list[Appointment]:
    """The active appointments of these agendas overlapping [start_from, start_before), in one
    query whatever their number, recorded in one insert (one LIST event per appointment shown).

    Cancelled appointments are left out: their time is free again and may hold another booking.
    Patients and relatives come with their names only (AGENDA_DEFERRED): reading another of
    their personal fields costs a query per row.
    """
    appointments = (
        visible_appointments(actor)
        .filter(practitioner_id__in=practitioner_ids, start__lt=start_before, end__gt=start_from)
        .exclude(status=Appointment.Status.CANCELLED)
        .select_related("practitioner__practice", "reason", "patient", "relative")
        # Names only: every other personal field would be decrypted for nothing, row by row.
        .defer(*AGENDA_DEFERRED)
        .order_by("start", "id")
    )
    items = list(appointments)
    record_access(actor=actor, action=Action.LIST, appointments=items)
    return items


def no_show_counts(
    *, actor: Actor, practitioner_ids: Collection[int], patient_ids: Collection[int]
) -> dict[tuple[int, int], int]:
    """No-shows per (practitioner id, patient id), in one aggregate query; absent keys are 0.

    Counted per patient record, relatives' appointments included: the account that booked and
    did not come or cancel is the one the online-booking limit applies to.
    """
    if not practitioner_ids or not patient_ids:
        return {}
    rows = (
        visible_appointments(actor)
        .filter(
            status=Appointment.Status.NO_SHOW,
            practitioner_id__in=practitioner_ids,
            patient_id__in=patient_ids,
        )
        .values_list("practitioner_id", "patient_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {(practitioner_id, patient_id): count for practitioner_id, patient_id, count in rows}
