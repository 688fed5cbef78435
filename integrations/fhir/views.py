"""FHIR R4 views (DESIGN contracts) that show no appointment: the CapabilityStatement,
Practitioner, Schedule and Slot. Thin: parse, check the grant, query, build the resource. The
pipeline (integrations.fhir.pipeline) authenticates, counts the request against the integration's
quota and turns every failure into an OperationOutcome. Appointments: appointment_views.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from audit.registry import audit_exempt
from integrations.access import IntegrationContext
from integrations.fhir import capability
from integrations.fhir.errors import FhirError, not_found, operation_outcome
from integrations.fhir.params import (
    check_names,
    numeric_id,
    page_of,
    period_of,
    reference_id,
    single,
)
from integrations.fhir.pipeline import (
    base_url,
    endpoint,
    fhir_response,
    public_endpoint,
    searchset_response,
)
from integrations.fhir.resources import (
    IDNAT_PS_SYSTEM,
    practitioner_resource,
    schedule_resource,
    slot_resource,
)
from integrations.fhir.scoping import require_grant, require_scope, visible_practitioner_ids
from integrations.fhir.slots import free_starts, parse_schedule_id, parse_slot_id, schedule_reason
from integrations.scopes import SLOT_READ
from practitioners.models import Practitioner, VisitReason

DEFAULT_SLOT_WINDOW = timedelta(days=7)


def _paged(
    request: HttpRequest, rows: QuerySet[Any], build: Callable[[Any], dict[str, Any]]
) -> HttpResponse:
    page = page_of(request.GET)
    items = list(rows[page.offset : page.offset + page.count])
    total = rows.count() if page.offset or len(items) == page.count else len(items)
    return searchset_response(request, page, total=total, resources=[build(item) for item in items])


def _token_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("oauth-token"))


# --- Public -------------------------------------------------------------------------------------


@audit_exempt("FHIR CapabilityStatement: describes the API, no data")
@public_endpoint
def metadata(request: HttpRequest) -> HttpResponse:
    statement = capability.capability_statement(
        base=base_url(request), token_url=_token_url(request)
    )
    return fhir_response(statement)


@audit_exempt("SMART configuration: the token endpoint and scopes, no data")
@public_endpoint
def smart_configuration(request: HttpRequest) -> HttpResponse:
    return JsonResponse(capability.smart_configuration(token_url=_token_url(request)))


@audit_exempt("unknown FHIR path: answers 404")
@csrf_exempt
def unknown(request: HttpRequest, path: str = "") -> HttpResponse:
    outcome = operation_outcome(_("Unknown resource type or path."), code="not-supported")
    return fhir_response(outcome, status=404)


# --- Practitioners, schedules, slots: no appointment data --------------------------------------


@audit_exempt("FHIR Practitioner: practitioners' public data, no appointment")
@endpoint("GET")
def practitioners(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    check_names(request.GET, {"_id", "identifier"})
    rows = Practitioner.objects.filter(pk__in=visible_practitioner_ids(context))
    ids = single(request.GET, "_id")
    if ids is not None:
        rows = rows.filter(pk__in=[numeric_id(part) or 0 for part in ids.split(",")])
    identifier = single(request.GET, "identifier")
    if identifier is not None:
        rows = rows.filter(rpps=_rpps(identifier))
    rows = rows.select_related("specialty").order_by("last_name", "first_name", "pk")
    return _paged(request, rows, practitioner_resource)


def _rpps(identifier: str) -> str:
    system, _bar, value = identifier.rpartition("|")
    if system and system != IDNAT_PS_SYSTEM:
        return ""
    return value[1:] if len(value) == 12 and value.startswith("8") else ""


@audit_exempt("FHIR Practitioner: practitioners' public data, no appointment")
@endpoint("GET")
def practitioner(
    request: HttpRequest, context: IntegrationContext, resource_id: str
) -> HttpResponse:
    pk = numeric_id(resource_id)
    found = (
        Practitioner.objects.select_related("specialty").filter(pk=pk).first()
        if pk in visible_practitioner_ids(context)
        else None
    )
    if found is None:
        raise not_found()
    return fhir_response(practitioner_resource(found))


@audit_exempt("FHIR Schedule: practitioners' visit reasons, no appointment")
@endpoint("GET")
def schedules(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    require_scope(context, SLOT_READ)
    check_names(request.GET, {"actor"})
    practitioner_ids = context.practitioner_ids(SLOT_READ)
    actor = single(request.GET, "actor")
    if actor is not None:
        pk = numeric_id(reference_id(actor, "Practitioner"))
        if pk is None:
            raise not_found()
        require_grant(context, pk, SLOT_READ)
        practitioner_ids = [pk]
    rows = (
        VisitReason.objects.filter(practitioner_id__in=practitioner_ids, active=True)
        .select_related("practitioner")
        .order_by("practitioner_id", "position", "pk")
    )
    return _paged(request, rows, schedule_resource)


def _schedule(context: IntegrationContext, value: str) -> VisitReason:
    parsed = parse_schedule_id(value)
    if parsed is None:
        raise not_found()
    practitioner_id, reason_id = parsed
    require_grant(context, practitioner_id, SLOT_READ)
    reason = schedule_reason(practitioner_id, reason_id)
    if reason is None:
        raise not_found()
    return reason


@audit_exempt("FHIR Schedule: practitioners' visit reasons, no appointment")
@endpoint("GET")
def schedule(request: HttpRequest, context: IntegrationContext, resource_id: str) -> HttpResponse:
    require_scope(context, SLOT_READ)
    return fhir_response(schedule_resource(_schedule(context, resource_id)))


@audit_exempt("FHIR Slot: free slots only")
@endpoint("GET")
def slots(request: HttpRequest, context: IntegrationContext) -> HttpResponse:
    require_scope(context, SLOT_READ)
    query = request.GET
    check_names(query, {"schedule", "start", "status"})
    page = page_of(query)
    reference = single(query, "schedule")
    if reference is None:
        raise FhirError(_("schedule is required: Schedule/{id}."), code="required")
    reason = _schedule(context, reference_id(reference, "Schedule"))
    if single(query, "status") not in (None, "free"):
        raise FhirError(_("Only free slots are listed: status=free."), code="not-supported")
    lower, upper = _slot_window(query.getlist("start"), reason.practitioner.practice.tz)
    starts = free_starts(reason=reason, lower=lower, upper=upper) if lower < upper else []
    shown = starts[page.offset : page.offset + page.count]
    resources = [slot_resource(reason, start) for start in shown]
    return searchset_response(request, page, total=len(starts), resources=resources)


def _slot_window(values: list[str], tz: ZoneInfo) -> tuple[datetime, datetime]:
    period = period_of(values, tz)
    lower = period.lower or timezone.now()
    upper = period.upper or lower + DEFAULT_SLOT_WINDOW
    if upper - lower > timedelta(days=settings.FHIR_MAX_SLOT_DAYS):
        raise FhirError(
            _("Search at most %(days)s days of slots at once.")
            % {"days": settings.FHIR_MAX_SLOT_DAYS},
            code="too-costly",
        )
    return lower, upper


@audit_exempt("FHIR Slot: a free slot only")
@endpoint("GET")
def slot(request: HttpRequest, context: IntegrationContext, resource_id: str) -> HttpResponse:
    require_scope(context, SLOT_READ)
    parsed = parse_slot_id(resource_id)
    if parsed is None:
        raise not_found()
    practitioner_id, reason_id, start = parsed
    require_grant(context, practitioner_id, SLOT_READ)
    reason = schedule_reason(practitioner_id, reason_id)
    if reason is None or start not in free_starts(
        reason=reason, lower=start, upper=start + timedelta(minutes=1)
    ):
        raise FhirError(_("No such free slot."), status=404, code="not-found")
    return fhir_response(slot_resource(reason, start))
