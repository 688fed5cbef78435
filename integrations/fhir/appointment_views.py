"""FHIR Appointment views: search, read, book (POST), cancel (PUT or PATCH).

Appointments are read only through booking.selectors (scoped to the practitioners who granted
Appointment.read, every appointment returned recorded in the audit log) and written only through
booking.services, as on every other channel. Before any appointment is returned, its patients
are admitted against the integration's distinct-patients quota, in the transaction of the read:
over the quota, the read, its audit events and any change roll back together, and the pipeline
answers 429 and records the refusal.
"""

from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from audit.models import Action
from audit.registry import audited
from booking.models import Appointment
from booking.selectors import access_appointment, appointments_for
from booking.services import book_appointment, cancel_appointment
from integrations.access import IntegrationContext
from integrations.fhir import writes
from integrations.fhir.errors import FhirError, not_found
from integrations.fhir.params import (
    check_names,
    numeric_id,
    page_of,
    period_of,
    reference_id,
    single,
)
from integrations.fhir.pipeline import (
    JSON_PATCH,
    base_url,
    endpoint,
    fhir_response,
    json_body,
    searchset_response,
)
from integrations.fhir.resources import STATUSES, appointment_resource
from integrations.fhir.scoping import require_grant, require_scope
from integrations.quotas import admit_patients
from integrations.scopes import APPOINTMENT_READ, APPOINTMENT_WRITE, PATIENT_READ
from practitioners.models import Practitioner

STATUS_CODES = {code: status for status, code in STATUSES.items()}


def _admit(context: IntegrationContext, appointments: Iterable[Appointment]) -> None:
    patient_ids = sorted({appointment.patient_id for appointment in appointments})
    if patient_ids:
        admit_patients(context.integration, patient_ids)


def _resource(context: IntegrationContext, appointment: Appointment) -> dict[str, Any]:
    return appointment_resource(
        appointment,
        integration_id=context.integration.pk,
        with_patient=context.allows(appointment.practitioner_id, PATIENT_READ),
    )


@audited
@endpoint("GET", "POST")
def appointments(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    if request.method == "POST":
        return _book(request, context)
    return _search_appointments(request, context)


def _search_appointments(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    require_scope(context, APPOINTMENT_READ)
    query = request.GET
    check_names(query, {"practitioner", "date", "status"})
    page = page_of(query)
    practitioner_id = _practitioner_param(context, single(query, "practitioner"))
    dates = query.getlist("date")
    period = period_of(dates, _date_timezone(practitioner_id, dates))
    status = _status_param(single(query, "status"))
    # The read, its audit events and the patients' admission stand or fall together: over the
    # quota, nothing was returned and nothing is recorded as returned (the refusal is).
    with transaction.atomic():
        found = appointments_for(
            actor=context.actor,
            practitioner_id=practitioner_id,
            start_from=period.lower,
            start_before=period.upper,
            status=status,
            offset=page.offset,
            limit=page.count,
            action=Action.SEARCH,
        )
        _admit(context, found.items)
    resources = [_resource(context, appointment) for appointment in found.items]
    return searchset_response(request, page, total=found.total, resources=resources)


def _practitioner_param(context: IntegrationContext, value: str | None) -> int | None:
    if value is None:
        return None
    pk = numeric_id(reference_id(value, "Practitioner"))
    if pk is None:
        raise not_found()
    require_grant(context, pk, APPOINTMENT_READ)
    return pk


def _date_timezone(practitioner_id: int | None, dates: Sequence[str]) -> ZoneInfo:
    """A date without a time is a day in the practice's timezone; looked up only when needed."""
    name = None
    if practitioner_id is not None and any("T" not in value for value in dates):
        name = (
            Practitioner.objects.filter(pk=practitioner_id)
            .values_list("practice__timezone", flat=True)
            .first()
        )
    return ZoneInfo(name or settings.TIME_ZONE)


def _status_param(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in STATUS_CODES:
        raise FhirError(_("Unknown status: %(value)s.") % {"value": value[:40]})
    return STATUS_CODES[value]


def _book(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    require_scope(context, APPOINTMENT_WRITE)
    booking = writes.parse_booking(json_body(request), context)
    # Before booking: a refusal leaves nothing booked.
    admit_patients(context.integration, [booking.person.patient.pk])
    appointment = book_appointment(
        actor=context.actor,
        practitioner=booking.reason.practitioner,
        reason=booking.reason,
        start=booking.start,
        patient=booking.person.patient,
        relative=booking.person.relative,
        channel=Appointment.Channel.FHIR,
    )
    location = f"{base_url(request)}Appointment/{appointment.pk}"
    return fhir_response(
        _resource(context, appointment), status=201, headers={"Location": location}
    )


@audited
@endpoint("GET", "PUT", "PATCH")
def appointment(
    request: HttpRequest, context: IntegrationContext, resource_id: str
) -> HttpResponse:
    if request.method == "GET":
        return _read_appointment(context, resource_id)
    return _cancel(request, context, resource_id)


def _read_appointment(context: IntegrationContext, resource_id: str) -> HttpResponse:
    require_scope(context, APPOINTMENT_READ)
    pk = numeric_id(resource_id)
    if pk is None:
        raise not_found()
    with transaction.atomic():
        found = access_appointment(actor=context.actor, appointment_id=pk)
        _admit(context, [found])
    return fhir_response(_resource(context, found))


def _cancel(request: HttpRequest, context: IntegrationContext, resource_id: str) -> HttpResponse:
    require_scope(context, APPOINTMENT_WRITE)
    pk = numeric_id(resource_id)
    if pk is None:
        raise not_found()
    if request.method == "PUT":
        reason = writes.cancellation_from_put(json_body(request), resource_id)
    else:
        operations = json_body(request, content_types=frozenset({JSON_PATCH}))
        reason = writes.cancellation_from_patch(operations)
    # Over the patients quota the cancellation rolls back with the rest: a 429 means nothing
    # happened, and the client may retry after Retry-After.
    with transaction.atomic():
        cancelled = cancel_appointment(actor=context.actor, appointment_id=pk, reason=reason)
        _admit(context, [cancelled])
    return fhir_response(_resource(context, cancelled))
