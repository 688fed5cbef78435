"""What a practitioner offers: weekly hours, absences, visit reasons and booking rules.

Every change here alters the free slots: it refreshes the next-slots table once, after commit
(`booking.next_slots.refresh_once_after_commit`). Changes that must not race a booking take the
agenda lock that booking.services takes, so they run one after the other.
"""

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role
from audit.actors import Actor
from booking.errors import InvalidInput, NotAllowed, NotVisible
from booking.models import ACTIVE_STATUSES, Appointment
from booking.next_slots import refresh_once_after_commit
from booking.selectors import staff_level
from practitioners.models import Absence, Practitioner, StaffAccess, VisitReason, WeeklyHours


def ensure_manages(actor: Actor, practitioner: Practitioner) -> None:
    if staff_level(actor, practitioner.pk) != StaffAccess.Level.MANAGE:
        raise NotAllowed(_("You may not change this agenda."))


def ensure_owner(actor: Actor, practitioner: Practitioner) -> None:
    """Booking rules and who may act on an agenda are the practitioner's own decisions: not even
    a secretary who manages the agenda changes them."""
    if actor.is_system:
        return
    user = actor.user
    if user is None or not user.is_active or user.role != Role.PRACTITIONER:
        raise NotAllowed(_("Only the practitioner may change this."))
    if getattr(getattr(user, "practitioner", None), "pk", None) != practitioner.pk:
        raise NotAllowed(_("Only the practitioner may change this."))


def lock_agenda(practitioner: Practitioner) -> None:
    """The row lock booking.services takes before a booking (NO KEY UPDATE): an absence never
    lands on an appointment booked meanwhile, and two edits of the hours cannot both pass the
    overlap check."""
    list(
        Practitioner.objects.select_for_update(no_key=True)
        .filter(pk=practitioner.pk)
        .values_list("pk", flat=True)
    )


def _cleaned(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """Values run through the model fields' own validation (the admin applies the same)."""
    cleaned = {}
    for name, value in values.items():
        field = cast(models.Field, model._meta.get_field(name))  # type: ignore[type-arg]
        try:
            cleaned[name] = field.clean(value, None)
        except ValidationError as error:
            raise InvalidInput(" ".join(error.messages), field=name) from error
    return cleaned


# --- Absences -----------------------------------------------------------------------------------


@transaction.atomic
def add_absence(
    *,
    actor: Actor,
    practitioner: Practitioner,
    start: datetime,
    end: datetime,
    label: str = "",
) -> Absence:
    """Block a time range. Refused while active appointments fall inside it: they must be moved
    or cancelled first (with their patients told), never silently left in a closed agenda."""
    ensure_manages(actor, practitioner)
    if start >= end:
        raise InvalidInput(_("The end must come after the start."), field="end")
    if end <= timezone.now():
        raise InvalidInput(_("This range is already over."), field="end")
    lock_agenda(practitioner)
    booked = Appointment.objects.filter(
        practitioner=practitioner, status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start
    ).count()
    if booked:
        raise InvalidInput(
            _("%(count)d appointment(s) are booked in this range: move or cancel them first.")
            % {"count": booked},
            field="start",
        )
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        return Absence.objects.create(
            practitioner=practitioner, start=start, end=end, label=label.strip()[:120]
        )


@transaction.atomic
def delete_absence(*, actor: Actor, practitioner: Practitioner, absence_id: int) -> None:
    ensure_manages(actor, practitioner)
    absence = Absence.objects.filter(practitioner=practitioner, pk=absence_id).first()
    if absence is None:
        raise NotVisible(detail="absence not in this agenda")
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        absence.delete()


# --- Weekly hours -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoursSpec:
    """A range of opening hours (wall-clock times of the practice), valid between two dates
    (None: open-ended), open to the given reasons (empty: to every reason)."""

    start_time: time
    end_time: time
    valid_from: date | None = None
    valid_until: date | None = None
    reason_ids: frozenset[int] = frozenset()


def _check_hours(practitioner: Practitioner, spec: HoursSpec) -> None:
    if spec.start_time >= spec.end_time:
        raise InvalidInput(_("The end must come after the start."), field="end_time")
    if spec.valid_from and spec.valid_until and spec.valid_from > spec.valid_until:
        raise InvalidInput(_("The validity must end after it starts."), field="valid_until")
    known = set(
        VisitReason.objects.filter(practitioner=practitioner, pk__in=spec.reason_ids).values_list(
            "pk", flat=True
        )
    )
    if known != spec.reason_ids:
        raise InvalidInput(_("Choose among this practitioner's visit reasons."), field="reasons")


def _refuse_overlap(
    practitioner: Practitioner, weekday: int, spec: HoursSpec, *, exclude_id: int | None = None
) -> None:
    """Two ranges of one day may not overlap while both are valid: the engine would offer the
    same slot twice, and a restriction to some reasons would mean nothing."""
    overlapping = WeeklyHours.objects.filter(
        practitioner=practitioner,
        weekday=weekday,
        start_time__lt=spec.end_time,
        end_time__gt=spec.start_time,
    )
    if exclude_id is not None:
        overlapping = overlapping.exclude(pk=exclude_id)
    if spec.valid_until is not None:
        overlapping = overlapping.filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=spec.valid_until)
        )
    if spec.valid_from is not None:
        overlapping = overlapping.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=spec.valid_from)
        )
    other = overlapping.first()
    if other is not None:
        raise InvalidInput(
            _("These hours overlap the range %(range)s: change or delete it first.")
            % {"range": str(other)}
        )


def _save_hours(hours: WeeklyHours, spec: HoursSpec) -> WeeklyHours:
    hours.start_time, hours.end_time = spec.start_time, spec.end_time
    hours.valid_from, hours.valid_until = spec.valid_from, spec.valid_until
    hours.save()
    hours.reasons.set(sorted(spec.reason_ids))
    return hours


@transaction.atomic
def add_weekly_hours(
    *, actor: Actor, practitioner: Practitioner, weekdays: Collection[int], spec: HoursSpec
) -> list[WeeklyHours]:
    """The same range on each of `weekdays`; all or none of them."""
    ensure_manages(actor, practitioner)
    if not weekdays or not set(weekdays) <= set(WeeklyHours.Weekday.values):
        raise InvalidInput(_("Choose at least one day of the week."), field="weekdays")
    _check_hours(practitioner, spec)
    lock_agenda(practitioner)
    created = []
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        for weekday in sorted(set(weekdays)):
            _refuse_overlap(practitioner, weekday, spec)
            hours = WeeklyHours(practitioner=practitioner, weekday=weekday)
            created.append(_save_hours(hours, spec))
    return created


def _hours_of(practitioner: Practitioner, hours_id: int) -> WeeklyHours:
    hours = WeeklyHours.objects.filter(practitioner=practitioner, pk=hours_id).first()
    if hours is None:
        raise NotVisible(detail="hours not in this agenda")
    return hours


@transaction.atomic
def change_weekly_hours(
    *, actor: Actor, practitioner: Practitioner, hours_id: int, weekday: int, spec: HoursSpec
) -> WeeklyHours:
    ensure_manages(actor, practitioner)
    if weekday not in WeeklyHours.Weekday.values:
        raise InvalidInput(_("Choose a day of the week."), field="weekday")
    _check_hours(practitioner, spec)
    lock_agenda(practitioner)
    hours = _hours_of(practitioner, hours_id)
    _refuse_overlap(practitioner, weekday, spec, exclude_id=hours.pk)
    hours.weekday = weekday
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        return _save_hours(hours, spec)


@transaction.atomic
def delete_weekly_hours(*, actor: Actor, practitioner: Practitioner, hours_id: int) -> None:
    """Booked appointments stay booked: closing hours never cancels anyone."""
    ensure_manages(actor, practitioner)
    hours = _hours_of(practitioner, hours_id)
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        hours.delete()


# --- Visit reasons ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonSpec:
    label: str
    duration_minutes: int
    online_bookable: bool = True
    patient_kind: str = VisitReason.PatientKind.ALL
    position: int = 0


def _reason_of(practitioner: Practitioner, reason_id: int) -> VisitReason:
    reason = VisitReason.objects.filter(practitioner=practitioner, pk=reason_id).first()
    if reason is None:
        raise NotVisible(detail="visit reason not in this agenda")
    return reason


@transaction.atomic
def add_visit_reason(*, actor: Actor, practitioner: Practitioner, spec: ReasonSpec) -> VisitReason:
    ensure_manages(actor, practitioner)
    values = _cleaned(VisitReason, asdict(spec) | {"label": spec.label.strip()})
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        return VisitReason.objects.create(practitioner=practitioner, **values)


@transaction.atomic
def change_visit_reason(
    *, actor: Actor, practitioner: Practitioner, reason_id: int, spec: ReasonSpec
) -> VisitReason:
    """A new duration applies to appointments booked from now on; booked ones keep theirs."""
    ensure_manages(actor, practitioner)
    values = _cleaned(VisitReason, asdict(spec) | {"label": spec.label.strip()})
    reason = _reason_of(practitioner, reason_id)
    for name, value in values.items():
        setattr(reason, name, value)
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        reason.save(update_fields=list(values))
    return reason


@transaction.atomic
def set_visit_reason_active(
    *, actor: Actor, practitioner: Practitioner, reason_id: int, active: bool
) -> VisitReason:
    """An inactive reason is offered neither online nor to new bookings; its appointments stay."""
    ensure_manages(actor, practitioner)
    reason = _reason_of(practitioner, reason_id)
    reason.active = active
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        reason.save(update_fields=["active"])
    return reason


@transaction.atomic
def delete_visit_reason(*, actor: Actor, practitioner: Practitioner, reason_id: int) -> None:
    """Only a reason nothing refers to: appointments keep their reason (deactivate it instead),
    and hours restricted to it would silently open to every reason once it is gone."""
    ensure_manages(actor, practitioner)
    lock_agenda(practitioner)  # no booking of it can commit between the check and the delete
    reason = _reason_of(practitioner, reason_id)
    if reason.appointments.exists():
        raise InvalidInput(_("Appointments were booked for this reason: deactivate it instead."))
    if reason.weekly_hours.exists():
        raise InvalidInput(
            _("Some opening hours are restricted to this reason: change them first.")
        )
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        reason.delete()


# --- Booking rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRules:
    minimum_notice_minutes: int
    booking_horizon_days: int
    cancellation_notice_hours: int
    reminders_enabled: bool
    reminder_hours: tuple[int, ...]
    online_booking_enabled: bool
    accepts_new_patients: bool
    no_show_limit: int | None


@transaction.atomic
def update_booking_rules(
    *, actor: Actor, practitioner: Practitioner, rules: BookingRules
) -> Practitioner:
    """Reminders already scheduled keep their times; new bookings follow the new hours."""
    ensure_owner(actor, practitioner)
    values = asdict(rules) | {"reminder_hours": sorted(rules.reminder_hours, reverse=True)}
    values = _cleaned(Practitioner, values)
    if values["reminders_enabled"] and not values["reminder_hours"]:
        raise InvalidInput(
            _("Give at least one reminder time, or turn reminders off."), field="reminder_hours"
        )
    for name, value in values.items():
        setattr(practitioner, name, value)
    with refresh_once_after_commit(practitioner_id=practitioner.pk):
        practitioner.save(update_fields=list(values))
    return practitioner
