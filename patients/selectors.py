"""Reads of a patient's own profile and relatives. Relatives are only ever read through their
managing patient, so another patient's relative is simply not found (404)."""

from django.db.models import QuerySet

from accounts.models import Role, User
from booking.errors import NotVisible
from patients.models import Patient, Relative


def patient_for(user: User) -> Patient | None:
    """The patient profile of a patient account; None for staff and accounts without one."""
    if user.role != Role.PATIENT:
        return None
    return Patient.objects.filter(user=user).first()


def relatives_of(*, patient: Patient) -> QuerySet[Relative]:
    return patient.relatives.order_by("id")  # type: ignore[attr-defined,no-any-return]


def access_relative(*, patient: Patient, relative_id: int) -> Relative:
    """One of the patient's relatives; NotVisible (404) for anyone else's or an unknown id."""
    relative = relatives_of(patient=patient).filter(pk=relative_id).first()
    if relative is None:
        raise NotVisible(detail="relative not managed by patient")
    return relative
