from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.actors import actor_for
from audit.models import Channel
from booking.errors import DomainError
from booking.refusals import record_refusal


class DomainErrorMiddleware:
    """Page-level mapping of domain errors: 404 / 403 / 409 / 400 pages, refusals audited."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, DomainError):
            return None
        record_refusal(actor_for(request, channel=Channel.WEB), exc)
        return render(request, "domain_error.html", {"error": exc}, status=exc.status)
