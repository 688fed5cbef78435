"""One mapping of domain errors to HTTP for the REST API (the pages have booking.middleware)."""

from typing import Any

from rest_framework import status as http
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from audit.actors import actor_for
from audit.models import Channel
from booking.errors import DomainError
from booking.refusals import record_refusal


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        request = context["request"]
        record_refusal(actor_for(request, channel=Channel.API), exc)
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field and exc.status == http.HTTP_400_BAD_REQUEST:
            body[exc.field] = [exc.message]  # per-field form too, as DRF's own 400s have it
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    # The contract's error shape is {"detail", "code"}; DRF's own (403/404/405/415...) carry only
    # "detail". Per-field 400s stay as they are.
    if (
        response is not None
        and isinstance(exc, APIException)
        and isinstance(response.data, dict)
        and "detail" in response.data
    ):
        response.data.setdefault("code", exc.get_codes())
    return response
