"""Writes through FHIR, parsed into the arguments of booking.services.

Booking (`POST Appointment`) takes an Appointment with `status` booked (or proposed/pending,
booked at once), exactly one `slot` reference (`Slot/<practitioner>-<reason>-<yyyymmddHHMM>`, as
the Slot search returns it) and one Patient participant: the pseudonym this API gave for a
patient of that practitioner, as `Patient/<pseudonym>` or as the actor's identifier. `start`,
`end` and a Practitioner participant are optional and must match the slot. Creating a new
patient from a contained Patient is not supported (see the report of issue 7).

Cancelling is an update of `status` to `cancelled`: `PUT Appointment/{id}` with the resource
(only `status` and `cancelationReason.text` are read), or `PATCH` with a JSON Patch replacing
`/status`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from integrations.access import IntegrationContext
from integrations.fhir import pseudonyms
from integrations.fhir.errors import FhirError, unprocessable
from integrations.fhir.params import reference_id
from integrations.fhir.scoping import require_grant
from integrations.fhir.slots import parse_slot_id, schedule_reason
from integrations.scopes import APPOINTMENT_WRITE
from practitioners.models import VisitReason

BOOKABLE_STATUSES = frozenset({"booked", "proposed", "pending"})
MAX_REASON_LENGTH = 300


@dataclass(frozen=True)
class Booking:
    reason: VisitReason  # with its practitioner and practice
    start: datetime
    person: pseudonyms.Person


def _appointment(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
        raise FhirError(_("Send an Appointment resource."), code="structure")
    return body


def _unknown_slot() -> FhirError:
    return unprocessable(_("Unknown slot: book one from the Slot search."))


def parse_booking(body: Any, context: IntegrationContext) -> Booking:
    resource = _appointment(body)
    if resource.get("status") not in BOOKABLE_STATUSES:
        raise FhirError(_("status must be booked (or proposed, pending)."), code="required")
    practitioner_id, reason_id, start = _slot(resource)
    require_grant(context, practitioner_id, APPOINTMENT_WRITE, hidden=_unknown_slot())
    reason = schedule_reason(practitioner_id, reason_id)
    if reason is None:
        raise _unknown_slot()
    _check_times(resource, start, reason)
    _check_practitioner(resource, practitioner_id)
    person = pseudonyms.resolve(
        integration_id=context.integration.pk,
        practitioner_id=practitioner_id,
        value=_patient_pseudonym(resource),
    )
    if person is None:
        raise unprocessable(
            _("Unknown patient for this practitioner: name them by the reference this API gave.")
        )
    return Booking(reason=reason, start=start, person=person)


def _slot(resource: dict[str, Any]) -> tuple[int, int, datetime]:
    slots = resource.get("slot")
    if not isinstance(slots, list) or len(slots) != 1 or not isinstance(slots[0], dict):
        raise FhirError(_("Reference exactly one slot."), code="required")
    reference = slots[0].get("reference")
    parsed = parse_slot_id(reference_id(reference, "Slot")) if isinstance(reference, str) else None
    if parsed is None:
        raise _unknown_slot()
    return parsed


def _check_times(resource: dict[str, Any], start: datetime, reason: VisitReason) -> None:
    for name, expected in (("start", start), ("end", start + reason.duration)):
        value = resource.get(name)
        if value is None:
            continue
        try:
            given = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            given = None
        if given is None or given.tzinfo is None:
            raise FhirError(_("%(name)s is not a valid instant.") % {"name": name})
        if given != expected:
            raise unprocessable(_("%(name)s does not match the slot.") % {"name": name})


def _actors(resource: dict[str, Any]) -> list[dict[str, Any]]:
    participants = resource.get("participant")
    if not isinstance(participants, list):
        raise FhirError(_("participant is required."), code="required")
    actors = [p.get("actor") for p in participants if isinstance(p, dict)]
    return [actor for actor in actors if isinstance(actor, dict)]


def _check_practitioner(resource: dict[str, Any], practitioner_id: int) -> None:
    for actor in _actors(resource):
        reference = actor.get("reference")
        if (
            isinstance(reference, str)
            and "Practitioner/" in reference
            and reference_id(reference, "Practitioner") != str(practitioner_id)
        ):
            raise unprocessable(_("The practitioner does not match the slot."))


def _is_patient(actor: dict[str, Any]) -> bool:
    reference = actor.get("reference")
    identifier = actor.get("identifier")
    return (
        actor.get("type") == "Patient"
        or (isinstance(reference, str) and (reference.startswith(("Patient/", "#"))))
        or (isinstance(identifier, dict) and identifier.get("system") == pseudonyms.SYSTEM)
    )


def _patient_pseudonym(resource: dict[str, Any]) -> str:
    patients = [actor for actor in _actors(resource) if _is_patient(actor)]
    if len(patients) != 1:
        raise FhirError(_("Name exactly one Patient participant."), code="required")
    (actor,) = patients
    identifier = actor.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == pseudonyms.SYSTEM:
        value = identifier.get("value")
        return value if isinstance(value, str) else ""
    reference = actor.get("reference")
    if isinstance(reference, str) and reference.startswith("Patient/"):
        return reference_id(reference, "Patient")
    raise unprocessable(
        _("New patients cannot be created through this API: book a patient by their reference."),
        code="not-supported",
    )


def cancellation_from_put(body: Any, appointment_id: str) -> str:
    """The cancellation reason of a PUT that cancels; anything else is refused."""
    resource = _appointment(body)
    if resource.get("id") != appointment_id:
        raise FhirError(_("The id in the body must be the one in the URL."))
    if resource.get("status") != "cancelled":
        raise unprocessable(
            _("Only cancelling is supported: send the appointment with status cancelled."),
            code="not-supported",
        )
    return _reason_text(resource.get("cancelationReason"))


def cancellation_from_patch(operations: Any) -> str:
    """The cancellation reason of a JSON Patch that sets /status to cancelled."""
    if not isinstance(operations, list) or not operations:
        raise FhirError(_("Send a JSON Patch: a list of operations."), code="structure")
    status, reason = None, ""
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace"):
            raise unprocessable(_("Only add and replace are supported."), code="not-supported")
        if operation.get("path") == "/status":
            status = operation.get("value")
        elif operation.get("path") == "/cancelationReason":
            reason = _reason_text(operation.get("value"))
        else:
            raise unprocessable(_("Only /status may be changed."), code="not-supported")
    if status != "cancelled":
        raise unprocessable(_("Only cancelling is supported."), code="not-supported")
    return reason


def _reason_text(value: Any) -> str:
    text = value.get("text") if isinstance(value, dict) else None
    return text.strip()[:MAX_REASON_LENGTH] if isinstance(text, str) else ""
