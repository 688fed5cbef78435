"""The request pipeline of every FHIR view: method, content negotiation, bearer token, request
quota, then the handler; any failure becomes an OperationOutcome.

`application/fhir+json` is what we serve; `application/json` is accepted too (FHIR allows it).
Authentication runs after the cheap checks of the request's form, which tell nothing about any
data, and before anything that reads data.
"""

import json
import logging
import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from audit.actors import Actor
from booking.errors import DomainError
from booking.refusals import record_refusal
from integrations.access import IntegrationContext, IntegrationDenied, integration_context
from integrations.fhir.errors import FhirError, domain_error, operation_outcome
from integrations.fhir.params import Page
from integrations.fhir.resources import searchset
from integrations.quotas import QuotaExceeded, check_request_quota, quota_refused

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
RESOURCE_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
ACCEPTED = RESOURCE_TYPES | {"*/*", "application/*"}
FORMATS = RESOURCE_TYPES | {"json"}
REALM = 'Bearer realm="creneau-fhir"'

View = Callable[..., HttpResponse]


def fhir_response(
    body: dict[str, Any] | None, *, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    content = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    response = HttpResponse(content, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def base_url(request: HttpRequest) -> str:
    """The service base URL, `.../fhir/r4/`, for fullUrl, Location and links."""
    return request.build_absolute_uri(reverse("fhir-metadata")).removesuffix("metadata")


def searchset_response(
    request: HttpRequest, page: Page, *, total: int, resources: list[dict[str, Any]]
) -> HttpResponse:
    """A page of search results, with its `self` link and, unless it is the last, `next`."""
    next_url = None
    if page.offset + len(resources) < total:
        query = request.GET.copy()
        query["_getpagesoffset"] = str(page.offset + page.count)
        query["_count"] = str(page.count)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    links = {"self": request.build_absolute_uri(), "next": next_url}
    bundle = searchset(base=base_url(request), links=links, total=total, resources=resources)
    return fhir_response(bundle)


def json_body(request: HttpRequest, *, content_types: frozenset[str] = RESOURCE_TYPES) -> Any:
    if request.content_type not in content_types:
        raise FhirError(
            _("Send the body as %(types)s.") % {"types": ", ".join(sorted(content_types))},
            status=415,
            code="not-supported",
        )
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirError(_("The body is not valid JSON."), code="structure") from exc


def _negotiate(request: HttpRequest, methods: tuple[str, ...]) -> None:
    if request.method not in methods:
        raise FhirError(
            _("Method not allowed here."),
            status=405,
            code="not-supported",
            headers={"Allow": ", ".join(methods)},
        )
    requested = request.GET.get("_format")
    if requested is not None:
        acceptable = requested in FORMATS  # _format overrides the Accept header
    else:
        accept = request.headers.get("Accept", "")
        offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
        acceptable = not accept.strip() or bool(offered & ACCEPTED)
    if not acceptable:
        raise FhirError(
            _("Only application/fhir+json is served."), status=406, code="not-supported"
        )


def error_response(request: HttpRequest, exc: Exception, actor: Actor | None) -> HttpResponse:
    if isinstance(exc, DomainError):
        if actor is not None:
            record_refusal(actor, exc)
        exc = domain_error(exc)
    elif isinstance(exc, QuotaExceeded):  # before IntegrationDenied, its base class
        exc = _throttled(exc, actor)
    elif isinstance(exc, IntegrationDenied):
        exc = _denied(request, exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = FhirError(_("The body is too large."), status=413, code="too-costly")
    elif not isinstance(exc, FhirError):
        logger.exception("FHIR %s %s failed", request.method, request.path)
        exc = FhirError(_("Internal error."), status=500, code="exception")
    body = operation_outcome(exc.message, code=exc.code)
    return fhir_response(body, status=exc.status, headers=exc.headers)


def _throttled(exc: QuotaExceeded, actor: Actor | None) -> FhirError:
    if actor is not None:
        # After the rollback of what the request read: record the refusal, alert, and maybe
        # suspend a harvesting integration (integrations.quotas, integrations.detection).
        quota_refused(actor=actor, error=exc)
    return FhirError(
        _("Too many requests: retry later."),
        status=429,
        code="throttled",
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
    )


def _denied(request: HttpRequest, exc: IntegrationDenied) -> FhirError:
    if exc.status != 401:
        return FhirError(exc.message, status=exc.status, code="forbidden")
    challenge = REALM
    if "Authorization" in request.headers:
        challenge += ', error="invalid_token"'
    return FhirError(
        exc.message, status=401, code="security", headers={"WWW-Authenticate": challenge}
    )


def endpoint(*methods: str) -> Callable[[View], View]:
    """An authenticated FHIR view: the handler gets `(request, context, **url_kwargs)`."""

    def decorate(handler: View) -> View:
        @csrf_exempt  # a bearer token, no cookie: nothing for a cross-site form to ride on
        @wraps(handler)
        def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
            context: IntegrationContext | None = None
            try:
                _negotiate(request, methods)
                context = integration_context(request)
                check_request_quota(context.integration)
                response = handler(request, context, **kwargs)
            except Exception as exc:  # every failure answers an OperationOutcome
                response = error_response(request, exc, context.actor if context else None)
            # Personal data, per integration: no shared or browser cache keeps a copy.
            response["Cache-Control"] = "no-store"
            return response

        return view

    return decorate


def public_endpoint(handler: View) -> View:
    """A FHIR view without a token (the CapabilityStatement): GET only."""

    @csrf_exempt
    @wraps(handler)
    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        try:
            _negotiate(request, ("GET",))
            return handler(request, **kwargs)
        except Exception as exc:  # every failure answers an OperationOutcome
            return error_response(request, exc, None)

    return view
