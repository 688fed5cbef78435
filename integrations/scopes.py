"""SMART App Launch v1 system scopes an integration may be granted (least privilege: each one
allows exactly its operations, see integrations.permissions)."""

from django.utils.translation import gettext_lazy as _

SLOT_READ = "system/Slot.read"
APPOINTMENT_READ = "system/Appointment.read"
APPOINTMENT_WRITE = "system/Appointment.write"
PATIENT_READ = "system/Patient.read"

SCOPES = {
    SLOT_READ: _("See free slots and schedules"),
    APPOINTMENT_READ: _("See appointments (the patient as a pseudonym)"),
    APPOINTMENT_WRITE: _("Book and cancel appointments"),
    PATIENT_READ: _("See the name and phone number of booked patients"),
}
ALL_SCOPES = tuple(SCOPES)


def parse_scopes(value: str) -> list[str]:
    """Space-separated scopes, known ones only, in canonical order, without duplicates."""
    asked = set(value.split())
    return [scope for scope in ALL_SCOPES if scope in asked]
