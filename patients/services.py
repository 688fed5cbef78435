"""Changes to patients: relatives, and records the practice creates. Each owns its transaction."""

from datetime import date

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import Actor
from audit.models import Action
from audit.services import AppointmentRef, record_access
from booking.errors import DomainError, NotAllowed, NotVisible
from booking.models import ACTIVE_STATUSES, Appointment
from booking.selectors import staff_level
from patients.models import Patient, Relative
from practitioners.models import Practitioner, StaffAccess


class RelativeInUse(DomainError):
    """The relative still has appointments, which refer to them."""

    code = "relative_in_use"
    status = 409


@transaction.atomic
def add_relative(
    *,
    patient: Patient,
    first_name: str,
    last_name: str,
    birth_date: date | None = None,
    relationship: str = Relative.Relationship.CHILD,
) -> Relative:
    return Relative.objects.create(
        managed_by=patient,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        birth_date=birth_date,  # type: ignore[misc]  # stubs see the TextField base
        relationship=relationship,
    )


@transaction.atomic
def update_relative(*, relative: Relative, **fields: object) -> Relative:
    for name, value in fields.items():
        setattr(relative, name, value.strip() if isinstance(value, str) else value)
    relative.save()
    return relative


@transaction.atomic
def remove_relative(*, relative: Relative) -> None:
    """Refused while the relative has an upcoming appointment (cancel it first), and while past
    appointments refer to them: those are the medical history and are never rewritten."""
    upcoming = Appointment.objects.filter(
        relative=relative, status__in=ACTIVE_STATUSES, start__gte=timezone.now()
    )
    if upcoming.exists():
        raise RelativeInUse(
            _("%(name)s has upcoming appointments: cancel them before removing them.")
            % {"name": relative.full_name}
        )
    try:
        # A savepoint, so the refusal leaves the outer transaction usable.
        with transaction.atomic():
            relative.delete()
    except ProtectedError as exc:
        raise RelativeInUse(
            _("%(name)s has past appointments, which are kept: they cannot be removed.")
            % {"name": relative.full_name}
        ) from exc


@transaction.atomic
def create_patient_record(
    *,
    actor: Actor,
    practitioner: Practitioner,
    first_name: str,
    last_name: str,
    phone: str,
    email: str = "",
    birth_date: date | None = None,
) -> Patient:
    """A patient without an account, created by the practice to book them on the phone.

    Only staff who manage `practitioner`'s agenda may, and the record becomes one of their
    patients with its first appointment: call it in the booking's transaction, so a record made
    for a slot lost meanwhile is not left behind. Recorded as a CREATE for the practitioner.
    """
    level = staff_level(actor, practitioner.pk)
    if level is None:
        raise NotVisible(detail="agenda not visible to actor")
    if level != StaffAccess.Level.MANAGE:
        raise NotAllowed(_("You may view this agenda but not change it."))
    patient = Patient.objects.create(
        user=None,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        phone=phone.strip(),
        email=email.strip(),
        birth_date=birth_date,  # type: ignore[misc]  # stubs see the TextField base
    )
    record_access(
        actor=actor,
        action=Action.CREATE,
        appointments=[
            AppointmentRef(id=None, patient_id=patient.pk, practitioner_id=practitioner.pk)
        ],
        detail="patient record",
    )
    return patient
