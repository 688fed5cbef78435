"""My data (/me/data/): what Creneau holds about me, as a page and as a JSON download, and the
deletion of my account (GDPR articles 15, 17 and 20)."""

import json
from typing import cast

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from accounts.forms import ReauthForm
from accounts.models import User
from accounts.two_factor_views import locked_response
from audit.actors import actor_for
from audit.registry import audit_exempt, audited
from booking.errors import DomainError
from booking.models import Appointment
from booking.selectors import MAX_PAGE_SIZE, appointments_for
from patients.data_export import personal_data
from patients.gdpr import erase_account
from patients.models import Patient
from patients.selectors import patient_for

ACCESS_LOG_SHOWN = 20  # the page shows the latest entries; /me/access-log/ and the JSON, all


def _patient(request: HttpRequest) -> Patient:
    patient = patient_for(cast(User, request.user))  # login_required
    if patient is None:  # staff accounts have no patient file: their data is the practice's
        raise Http404
    return patient


@audited
@require_GET
@login_required
@never_cache
def my_data(request: HttpRequest) -> HttpResponse:
    data = personal_data(
        actor=actor_for(request), patient=_patient(request), detail="personal data page"
    )
    context = {"data": data, "access_log": data["access_log"][:ACCESS_LOG_SHOWN]}
    return render(request, "patients/data.html", context)


@audited
@require_GET
@login_required
@never_cache
def my_data_export(request: HttpRequest) -> HttpResponse:
    data = personal_data(
        actor=actor_for(request), patient=_patient(request), detail="personal data export (JSON)"
    )
    body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = f"creneau-my-data-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@audited
@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """Re-authenticate (password, and a code with two-step verification), then erase. The
    upcoming appointments to be cancelled are listed first (a recorded LIST)."""
    _patient(request)
    actor = actor_for(request)
    form = ReauthForm(request.POST or None, request=request)
    error = ""
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            try:
                erase_account(actor=actor, user=cast(User, request.user))
            except DomainError as exc:  # an appointment too close to cancel: nothing changed
                error = exc.message
            else:
                logout(request)
                return redirect("my-data-deleted")
    now = timezone.now()
    upcoming = appointments_for(
        actor=actor, start_from=now, status=Appointment.Status.BOOKED, limit=MAX_PAGE_SIZE
    )
    too_soon = [a for a in upcoming.items if a.start - now < a.practitioner.cancellation_notice]
    context = {"form": form, "upcoming": upcoming, "too_soon": too_soon, "error": error}
    return render(request, "patients/data_delete.html", context, status=409 if error else 200)


@audit_exempt("a static confirmation, shown after logout")
@require_GET
def account_deleted(request: HttpRequest) -> HttpResponse:
    return render(request, "patients/data_deleted.html")
