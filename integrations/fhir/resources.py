"""Builders from our models to FHIR R4 resources (plain dicts) and searchset Bundles.

What an Appointment shows of its patient depends on the integration's grant for that
practitioner (least privilege):
- without `system/Patient.read`: only the pseudonym, as `Patient/<pseudonym>`; no name, phone,
  email or birth date anywhere;
- with it: a contained Patient with the pseudonym as identifier, the name (family, given) of the
  person seen and the booking patient's phone: what a practice needs to reach them about the
  appointment, nothing more (never email, birth date or address).
`participant.actor.identifier` carries the pseudonym in both forms.
"""

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from booking.models import Appointment
from integrations.fhir import pseudonyms
from integrations.fhir.slots import schedule_id, slot_id
from practitioners.models import Practitioner, VisitReason

# France's national health-professional identifiers (IdNat_PS): "8" followed by the RPPS number.
IDNAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
CANCELLATION_REASONS = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"

STATUSES: dict[str, str] = {
    Appointment.Status.BOOKED: "booked",
    Appointment.Status.ARRIVED: "arrived",
    Appointment.Status.DONE: "fulfilled",
    Appointment.Status.NO_SHOW: "noshow",
    Appointment.Status.CANCELLED: "cancelled",
}
CANCELLED_BY = {
    Appointment.CancelledBy.PATIENT: "pat",
    Appointment.CancelledBy.PRACTICE: "prov",
    Appointment.CancelledBy.SYSTEM: "other",
}


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def practitioner_resource(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": str(practitioner.pk),
        "identifier": [
            {
                "type": {"coding": [{"system": IDENTIFIER_TYPES, "code": "IDNPS"}]},
                "system": IDNAT_PS_SYSTEM,
                "value": f"8{practitioner.rpps}",
            }
        ],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": practitioner.last_name,
                "given": [practitioner.first_name],
                "prefix": ["Dr"],
            }
        ],
        "qualification": [{"code": {"text": practitioner.specialty.name}}],
    }


def _practitioner_reference(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "reference": f"Practitioner/{practitioner.pk}",
        "type": "Practitioner",
        "display": practitioner.display_name,
    }


def schedule_resource(reason: VisitReason) -> dict[str, Any]:
    practitioner = reason.practitioner
    return {
        "resourceType": "Schedule",
        "id": schedule_id(practitioner.pk, reason.pk),
        "active": True,
        "serviceType": [{"text": reason.label}],
        "actor": [_practitioner_reference(practitioner)],
        "comment": f"{reason.label} ({reason.duration_minutes} min)",
    }


def slot_resource(reason: VisitReason, start: datetime) -> dict[str, Any]:
    practitioner_id = reason.practitioner_id
    return {
        "resourceType": "Slot",
        "id": slot_id(practitioner_id, reason.pk, start),
        "schedule": {"reference": f"Schedule/{schedule_id(practitioner_id, reason.pk)}"},
        "serviceType": [{"text": reason.label}],
        "status": "free",
        "start": instant(start),
        "end": instant(start + reason.duration),
    }


def appointment_resource(
    appointment: Appointment, *, integration_id: int, with_patient: bool
) -> dict[str, Any]:
    """The appointment as this integration may see it (see the module docstring)."""
    patient, contained = _patient_participant(
        appointment, integration_id=integration_id, with_patient=with_patient
    )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(appointment.pk),
        "meta": {"lastUpdated": instant(appointment.updated_at)},
        "contained": contained,
        "status": STATUSES[appointment.status],
        "serviceType": [{"text": appointment.reason.label}],
        "start": instant(appointment.start),
        "end": instant(appointment.end),
        "minutesDuration": int((appointment.end - appointment.start).total_seconds() // 60),
        "slot": [
            {
                "reference": "Slot/"
                + slot_id(appointment.practitioner_id, appointment.reason_id, appointment.start)
            }
        ],
        "created": instant(appointment.created_at),
        "participant": [
            {
                "actor": _practitioner_reference(appointment.practitioner),
                "required": "required",
                "status": "accepted",
            },
            patient,
        ],
    }
    if appointment.cancelled_by:
        code = CANCELLED_BY[Appointment.CancelledBy(appointment.cancelled_by)]
        resource["cancelationReason"] = {"coding": [{"system": CANCELLATION_REASONS, "code": code}]}
    return {name: value for name, value in resource.items() if value != []}


def _patient_participant(
    appointment: Appointment, *, integration_id: int, with_patient: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    handle = pseudonyms.pseudonym(
        integration_id=integration_id,
        patient_id=appointment.patient_id,
        relative_id=appointment.relative_id,
    )
    identifier = {"system": pseudonyms.SYSTEM, "value": handle}
    if not with_patient:
        actor = {"reference": f"Patient/{handle}", "type": "Patient", "identifier": identifier}
        return {"actor": actor, "required": "required", "status": "accepted"}, []
    person = appointment.relative or appointment.patient
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [identifier],
        "name": [{"family": person.last_name, "given": [person.first_name]}],
    }
    if appointment.patient.phone:
        patient["telecom"] = [{"system": "phone", "value": appointment.patient.phone}]
    actor = {
        "reference": "#patient",
        "type": "Patient",
        "identifier": identifier,
        "display": person.full_name,
    }
    return {"actor": actor, "required": "required", "status": "accepted"}, [patient]


def searchset(
    *,
    base: str,
    links: dict[str, str | None],
    total: int,
    resources: list[dict[str, Any]],
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(timezone.now())},
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links.items() if url],
    }
    if resources:  # FHIR JSON has no empty arrays
        bundle["entry"] = [
            {
                "fullUrl": f"{base}{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ]
    return bundle
