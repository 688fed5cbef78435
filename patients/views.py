"""My relatives: the people a patient books for. Only the patient's own; another's is a 404."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import User
from audit.registry import audit_exempt
from patients import services
from patients.forms import RelativeForm
from patients.models import Patient
from patients.selectors import access_relative, patient_for, relatives_of


def _patient(request: HttpRequest) -> Patient:
    patient = patient_for(cast(User, request.user))  # login_required
    if patient is None:
        raise Http404
    return patient


@audit_exempt("a patient's own relatives, not appointments")
@login_required
def relative_list(request: HttpRequest) -> HttpResponse:
    relatives = list(relatives_of(patient=_patient(request)))
    return render(request, "patients/relatives.html", {"relatives": relatives})


@audit_exempt("a patient's own relatives, not appointments")
@login_required
@require_http_methods(["GET", "POST"])
def relative_add(request: HttpRequest) -> HttpResponse:
    patient = _patient(request)
    form = RelativeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        relative = services.add_relative(patient=patient, **form.cleaned_data)
        messages.success(request, _("%(name)s has been added.") % {"name": relative.full_name})
        return redirect("relatives")
    return render(request, "patients/relative_form.html", {"form": form, "relative": None})


@audit_exempt("a patient's own relatives, not appointments")
@login_required
@require_http_methods(["GET", "POST"])
def relative_edit(request: HttpRequest, relative_id: int) -> HttpResponse:
    relative = access_relative(patient=_patient(request), relative_id=relative_id)
    initial = {
        "first_name": relative.first_name,
        "last_name": relative.last_name,
        "birth_date": relative.birth_date,
        "relationship": relative.relationship,
    }
    form = RelativeForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_valid():
        services.update_relative(relative=relative, **form.cleaned_data)
        messages.success(request, _("%(name)s has been updated.") % {"name": relative.full_name})
        return redirect("relatives")
    return render(request, "patients/relative_form.html", {"form": form, "relative": relative})


@audit_exempt("a patient's own relatives, not appointments")
@login_required
@require_http_methods(["GET", "POST"])
def relative_remove(request: HttpRequest, relative_id: int) -> HttpResponse:
    relative = access_relative(patient=_patient(request), relative_id=relative_id)
    if request.method == "POST":
        try:
            services.remove_relative(relative=relative)
        except services.RelativeInUse as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, _("%(name)s has been removed.") % {"name": relative.full_name}
            )
        return redirect("relatives")
    return render(request, "patients/relative_remove.html", {"relative": relative})
