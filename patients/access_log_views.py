"""My access log: who accessed my appointments (and my relatives'), in plain language.

Reading one's own access log is not itself recorded: it shows no appointment data, only who
touched it, and recording it would fill the patient's log with their own visits.
"""

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import User
from audit.access_log import access_log_of
from audit.registry import audit_exempt
from audit.selectors import Cursor
from patients.selectors import patient_for


@audit_exempt(
    "the patient's own access log: who touched their appointments and when, never the "
    "appointments themselves; not recorded, or each visit would fill the log it shows"
)
@require_GET
@login_required
@never_cache
def access_log(request: HttpRequest) -> HttpResponse:
    patient = patient_for(cast(User, request.user))  # login_required
    if patient is None:  # staff and admins have no patient file, hence no access log
        raise Http404
    before = request.GET.get("before", "")
    cursor = Cursor.parse(before) if before else None  # a mangled link shows the first page
    page = access_log_of(patient=patient, cursor=cursor)
    context = {
        "days": page.days,
        "next_cursor": str(page.next_cursor) if page.next_cursor else "",
        "paged": cursor is not None,
    }
    return render(request, "patients/access_log.html", context)
