"""/audit/breach/: the breach report on an admin page (OTP-verified admins, like the audit
pages). GET with a window previews the counts and the draft, or downloads it (`?download=1`);
POST files the report, and with confirmation notifies and revokes."""

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from audit.access import admin_audit_view, review_actor
from audit.registry import audited
from audit.selectors import record_review
from privacy.forms import BreachForm
from privacy.services import (
    FiledReport,
    analyze_breach,
    file_breach_report,
    preview_breach_report,
)

TEMPLATE = "privacy/breach.html"


@audited
@require_http_methods(["GET", "POST"])
@admin_audit_view
def breach_report(request: HttpRequest) -> HttpResponse:
    actor = review_actor(request)
    posted = request.method == "POST"
    form = BreachForm(request.POST if posted else request.GET or None)
    if not form.is_bound or not form.is_valid():
        record_review(actor=actor, page="breach report form")
        status = 400 if form.is_bound else 200
        return render(request, TEMPLATE, {"form": form}, status=status)
    data: dict[str, Any] = form.cleaned_data
    analysis = analyze_breach(
        actor=actor, integration_id=data["integration"].pk, since=data["since"], until=data["until"]
    )
    filed: FiledReport | None = None
    if posted:
        filed = file_breach_report(
            actor=actor, analysis=analysis, notify=data["notify"], revoke=data["revoke"]
        )
        draft = filed.draft
    else:
        draft = preview_breach_report(analysis).draft
    if request.GET.get("download") and not posted:
        response = HttpResponse(draft, content_type="text/markdown; charset=utf-8")
        name = f"breach-integration-{analysis.integration.pk}-{analysis.since:%Y%m%d}.md"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    context = {
        "form": form,
        "analysis": analysis,
        "patients": len(analysis.patient_ids),
        "identified": len(analysis.identified_patient_ids),
        "practitioners": len(analysis.practitioner_ids),
        "draft": draft,
        "filed": filed,
        "query": urlencode(
            {"integration": data["integration"].pk, **{k: form.data[k] for k in ("since", "until")}}
        ),
    }
    return render(request, TEMPLATE, context)
