"""Operations that change appointments. Each owns its transaction and records its access.

No double booking (DESIGN invariant 1): the service checks availability first so users get a clean
message, and the database is the real guard: on PostgreSQL an exclusion constraint over active
appointments, on SQLite `IMMEDIATE` transactions that serialize check-then-insert. A constraint
violation caught here becomes SlotUnavailable (HTTP 409).
"""

from datetime import datetime

from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import Actor
from audit.models import Action
from audit.services import record_access
from booking.availability import ONE_DAY, is_offered
from booking.errors import (
    InvalidTransition,
    NotAllowed,
    SlotNotOffered,
    SlotUnavailable,
    TooLateToCancel,
)
from booking.models import ACTIVE_STATUSES, ALLOWED_TRANSITIONS, Appointment
from booking.next_slots import refresh_after_commit
from booking.selectors import access_appointment, staff_level
from booking.slots import booking_window, load_schedules
from booking.waitlist import offer_freed_slot
from integrations.grants import granted_practitioner_ids
from integrations.scopes import APPOINTMENT_WRITE
from notifications.models import Notification
from notifications.services import (
    appointment_messages,
    cancel_pending_reminders,
    notify_appointment,
    queue,
    reminders_for,
)
from patients.models import Patient, Relative
from practitioners.models import Practitioner, StaffAccess, VisitReason

EXCLUSION_VIOLATION = "23P01"  # PostgreSQL SQLSTATE exclusion_violation
DEADLOCK_DETECTED = "40P01"


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _lock_agenda(practitioner: Practitioner) -> None:
    """Serialize the check-then-insert of bookings into one agenda, on PostgreSQL.

    Two transactions inserting overlapping appointments at once each find the other's row in the
    exclusion-constraint check and wait for it: a deadlock, which PostgreSQL breaks after a
    second by failing one of them. Taking the practitioner's row first orders them, so the
    second one sees the first's appointment. The constraint remains the guard. NO KEY UPDATE
    does not block other transactions' foreign keys to the practitioner. SQLite ignores it: its
    IMMEDIATE transactions already serialize every write.
    """
    list(
        Practitioner.objects.select_for_update(no_key=True)
        .filter(pk=practitioner.pk)
        .values_list("pk", flat=True)
    )


def _acts_for_practice(actor: Actor, practitioner: Practitioner, *, manage: bool) -> bool:
    level = staff_level(actor, practitioner.pk)
    return level == StaffAccess.Level.MANAGE or (not manage and level == StaffAccess.Level.VIEW)


def _writes_for_practice(actor: Actor, practitioner: Practitioner) -> bool:
    """An integration books and cancels for the practitioners who granted it Appointment.write
    (and whose token carries it), as their practice's staff would: the practitioner's own
    software. Marking statuses stays with the practice's people."""
    if actor.integration_id is None:
        return False
    return practitioner.pk in granted_practitioner_ids(
        integration_id=actor.integration_id, scope=APPOINTMENT_WRITE, token_scopes=actor.scopes
    )


def ensure_may_book(
    *, actor: Actor, practitioner: Practitioner, patient: Patient, relative: Relative | None
) -> bool:
    """Who may book for whom. Returns True when the actor books as practice staff."""
    if relative is not None and relative.managed_by_id != patient.pk:
        raise SlotNotOffered(_("This relative is not managed by this patient."), field="relative")
    if _acts_for_practice(actor, practitioner, manage=True) or _writes_for_practice(
        actor, practitioner
    ):
        return True
    if actor.is_patient and actor.user is not None and patient.user_id == actor.user.pk:
        return False
    raise NotAllowed(_("You may not book this appointment."))


class TooManyNoShows(SlotNotOffered):
    """Online booking refused after the practitioner's limit of no-shows; the practice may still
    book the patient on the phone."""

    code = "too_many_no_shows"


def no_shows_with(*, practitioner: Practitioner, patient: Patient) -> int:
    """The patient's no-shows with this practitioner, their relatives' appointments included:
    they booked those too, and neither came nor cancelled."""
    return Appointment.objects.filter(
        practitioner=practitioner, patient=patient, status=Appointment.Status.NO_SHOW
    ).count()


def _ensure_under_no_show_limit(*, practitioner: Practitioner, patient: Patient) -> None:
    limit = practitioner.no_show_limit
    if limit is not None and no_shows_with(practitioner=practitioner, patient=patient) >= limit:
        raise TooManyNoShows(
            _(
                "After missed appointments, online booking with this practitioner is closed to "
                "you. Please call the practice to book."
            )
        )


def is_existing_patient(
    *, practitioner: Practitioner, patient: Patient, relative: Relative | None = None
) -> bool:
    """Whether the person seen (the relative when there is one) already sees this practitioner:
    a parent's own appointments do not make their child an existing patient."""
    return Appointment.objects.filter(
        practitioner=practitioner, patient=patient, relative=relative, status__in=ACTIVE_STATUSES
    ).exists()


def ensure_online_rules(
    *,
    practitioner: Practitioner,
    reason: VisitReason,
    patient: Patient,
    relative: Relative | None = None,
) -> None:
    """Rules that apply to patients booking themselves, not to staff booking on the phone."""
    if not practitioner.online_booking_enabled:
        raise SlotNotOffered(_("This practitioner does not take bookings online."))
    _ensure_under_no_show_limit(practitioner=practitioner, patient=patient)
    if not reason.online_bookable:
        raise SlotNotOffered(_("This visit reason cannot be booked online."), field="reason")
    existing = is_existing_patient(practitioner=practitioner, patient=patient, relative=relative)
    if not existing and not practitioner.accepts_new_patients:
        raise SlotNotOffered(_("This practitioner does not accept new patients."))
    if reason.patient_kind == VisitReason.PatientKind.NEW and existing:
        raise SlotNotOffered(_("This visit reason is for new patients only."), field="reason")
    if reason.patient_kind == VisitReason.PatientKind.EXISTING and not existing:
        raise SlotNotOffered(_("This visit reason is for existing patients only."), field="reason")


def ensure_bookable(
    *,
    practitioner: Practitioner,
    reason: VisitReason,
    start: datetime,
    for_staff: bool,
) -> None:
    """Raise SlotNotOffered unless the engine offers `start`, SlotUnavailable if it is taken."""
    if reason.practitioner_id != practitioner.pk or not reason.active:
        raise SlotNotOffered(_("Unknown visit reason for this practitioner."), field="reason")
    tz = practitioner.practice.tz
    window = booking_window(practitioner, now=timezone.now(), for_staff=for_staff)
    # Before any date arithmetic: a start in year 1 or 9999 would overflow it.
    if not window.admits(start, tz=tz):
        raise SlotNotOffered(_("This time is not offered for booking."), field="start")
    # Taken first: in a rush on a slot nearly every attempt ends here, with one cheap query and
    # before the schedule is loaded (bench/booking_race.py measures this path).
    ensure_free(practitioner=practitioner, start=start, end=start + reason.duration)
    day = start.astimezone(tz).date()
    # Appointments are left out here: they were checked above, and answer 409, not 400.
    schedule = load_schedules(
        [practitioner], day - ONE_DAY, day + ONE_DAY, with_appointments=False
    )[practitioner.pk]
    offered = is_offered(
        start=start,
        rules=schedule.rules,
        busy=schedule.absences,
        reason_id=reason.pk,
        duration=reason.duration,
        tz=tz,
        earliest=window.earliest,
        latest_day=window.latest_day,
    )
    if not offered:
        raise SlotNotOffered(_("This time is not offered for booking."), field="start")


def ensure_free(*, practitioner: Practitioner, start: datetime, end: datetime) -> None:
    if Appointment.objects.filter(
        practitioner=practitioner, status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start
    ).exists():
        raise SlotUnavailable(start)


def book_appointment(
    *,
    actor: Actor,
    practitioner: Practitioner,
    reason: VisitReason,
    start: datetime,
    patient: Patient,
    relative: Relative | None = None,
    channel: str = Appointment.Channel.WEB,
) -> Appointment:
    """Book `start` for the patient, or raise why not (SlotUnavailable: 409).

    The checks run before the transaction opens: in a rush on a popular slot nearly every
    attempt loses, and losing then costs one query instead of a transaction. Inside it, under the
    agenda lock, the slot is checked again, and the exclusion constraint guards the insert.
    """
    as_staff = ensure_may_book(
        actor=actor, practitioner=practitioner, patient=patient, relative=relative
    )
    if not as_staff:
        ensure_online_rules(
            practitioner=practitioner, reason=reason, patient=patient, relative=relative
        )
    ensure_bookable(practitioner=practitioner, reason=reason, start=start, for_staff=as_staff)
    with transaction.atomic():
        _lock_agenda(practitioner)
        ensure_free(practitioner=practitioner, start=start, end=start + reason.duration)
        appointment = _insert(
            practitioner=practitioner,
            reason=reason,
            start=start,
            patient=patient,
            relative=relative,
            channel=channel,
            booked_by=actor.user,
        )
        record_access(actor=actor, action=Action.CREATE, appointments=[appointment])
        queue(
            appointment_messages(kind=Notification.Kind.CONFIRMATION, appointment=appointment)
            + reminders_for(appointment=appointment)
        )
        refresh_after_commit(practitioner_id=practitioner.pk)
    return appointment


def _insert(*, start: datetime, reason: VisitReason, **fields: object) -> Appointment:
    try:
        # A savepoint: the exclusion constraint is the real guard against a concurrent booking.
        with transaction.atomic():
            return Appointment.objects.create(
                start=start, end=start + reason.duration, reason=reason, **fields
            )
    except IntegrityError as exc:
        if _sqlstate(exc) == EXCLUSION_VIOLATION:
            raise SlotUnavailable(start) from exc
        raise
    except OperationalError as exc:
        # Only a writer that skipped _lock_agenda can deadlock us here, on an overlapping row:
        # PostgreSQL failed this insert so the other may go on, which makes the slot taken.
        if _sqlstate(exc) == DEADLOCK_DETECTED:
            raise SlotUnavailable(start) from exc
        raise


def _ensure_patient_may_change(appointment: Appointment, now: datetime) -> None:
    if appointment.start - now < appointment.practitioner.cancellation_notice:
        hours = appointment.practitioner.cancellation_notice_hours
        raise TooLateToCancel(
            _("This appointment starts in less than %(hours)s hours: please call the practice.")
            % {"hours": hours}
        )


def _ensure_may_change(actor: Actor, appointment: Appointment) -> Appointment.CancelledBy:
    """Checks shared by cancel and reschedule; returns who is acting."""
    if not appointment.is_active:
        raise InvalidTransition(_("This appointment is already cancelled."))
    by = _changed_by(actor, appointment)
    # Arrived, done and no-show record what happened: cancelling them would rewrite history.
    # The practice reverts a status first (mark_status) if it was set by mistake.
    if appointment.status != Appointment.Status.BOOKED:
        raise InvalidTransition(_("This appointment can no longer be changed."))
    if by == Appointment.CancelledBy.PATIENT:
        _ensure_patient_may_change(appointment, timezone.now())
    return by


def _changed_by(actor: Actor, appointment: Appointment) -> Appointment.CancelledBy:
    if actor.is_system:
        return Appointment.CancelledBy.SYSTEM
    if _acts_for_practice(actor, appointment.practitioner, manage=True) or _writes_for_practice(
        actor, appointment.practitioner
    ):
        return Appointment.CancelledBy.PRACTICE
    if actor.is_patient:
        return Appointment.CancelledBy.PATIENT
    raise NotAllowed(_("You may not change this appointment."), appointment_id=appointment.pk)


def _cancel(appointment: Appointment, *, by: str, actor: Actor, reason: str) -> Appointment:
    appointment.status = Appointment.Status.CANCELLED
    appointment.cancelled_by = by
    appointment.cancelled_by_user = actor.user
    appointment.cancellation_reason = reason[:300]
    appointment.cancelled_at = timezone.now()
    appointment.save(
        update_fields=[
            "status",
            "cancelled_by",
            "cancelled_by_user",
            "cancellation_reason",
            "cancelled_at",
            "updated_at",
        ]
    )
    return appointment


@transaction.atomic
def cancel_appointment(*, actor: Actor, appointment_id: int, reason: str = "") -> Appointment:
    """Patients up to the practitioner's cancellation notice; the practice and the system always."""
    appointment = access_appointment(actor=actor, appointment_id=appointment_id, for_update=True)
    by = _ensure_may_change(actor, appointment)
    _cancel(appointment, by=by, actor=actor, reason=reason)
    record_access(actor=actor, action=Action.CANCEL, appointments=[appointment])
    cancel_pending_reminders(appointment=appointment)
    notify_appointment(kind=Notification.Kind.CANCELLATION, appointment=appointment)
    offer_freed_slot(
        practitioner=appointment.practitioner, start=appointment.start, end=appointment.end
    )
    refresh_after_commit(practitioner_id=appointment.practitioner_id)
    return appointment


@transaction.atomic
def reschedule_appointment(*, actor: Actor, appointment_id: int, start: datetime) -> Appointment:
    """Move to another slot of the same practitioner and reason: the new appointment is booked
    and the old one cancelled together, or nothing changes."""
    old = access_appointment(actor=actor, appointment_id=appointment_id, for_update=True)
    by = _ensure_may_change(actor, old)
    as_staff = by != Appointment.CancelledBy.PATIENT
    if start == old.start:
        raise SlotNotOffered(_("Choose a different time."), field="start")
    # The old slot is released first so the new one may overlap it (moving by a quarter hour).
    _lock_agenda(old.practitioner)
    _cancel(old, by=by, actor=actor, reason="rescheduled")
    ensure_bookable(
        practitioner=old.practitioner, reason=old.reason, start=start, for_staff=as_staff
    )
    new = _insert(
        practitioner=old.practitioner,
        reason=old.reason,
        start=start,
        patient=old.patient,
        relative=old.relative,
        channel=old.channel,
        booked_by=actor.user,
        rescheduled_from=old,
    )
    record_access(actor=actor, action=Action.RESCHEDULE, appointments=[old])
    record_access(actor=actor, action=Action.CREATE, appointments=[new])
    # After the insert: a move by a quarter hour overlaps its old slot, which is free only
    # in part; the waiting list checks what is really bookable now.
    offer_freed_slot(practitioner=old.practitioner, start=old.start, end=old.end)
    cancel_pending_reminders(appointment=old)
    queue(
        appointment_messages(kind=Notification.Kind.RESCHEDULE, appointment=new)
        + reminders_for(appointment=new)
    )
    refresh_after_commit(practitioner_id=old.practitioner_id)
    return new


@transaction.atomic
def mark_status(*, actor: Actor, appointment_id: int, status: str) -> Appointment:
    """Arrived / done / no-show, by the practice; only the transitions of ALLOWED_TRANSITIONS."""
    appointment = access_appointment(actor=actor, appointment_id=appointment_id, for_update=True)
    if not _acts_for_practice(actor, appointment.practitioner, manage=True):
        raise NotAllowed(
            _("Only the practice may change an appointment's status."),
            appointment_id=appointment.pk,
        )
    if status not in ALLOWED_TRANSITIONS.get(appointment.status, frozenset()):
        raise InvalidTransition(
            _("An appointment cannot go from %(old)s to %(new)s.")
            % {"old": appointment.status, "new": status},
            field="status",
        )
    if status == Appointment.Status.NO_SHOW and appointment.start > timezone.now():
        raise InvalidTransition(_("A no-show can only be marked once the appointment has begun."))
    appointment.status = status
    appointment.save(update_fields=["status", "updated_at"])
    record_access(actor=actor, action=Action.STATUS, appointments=[appointment])
    return appointment
