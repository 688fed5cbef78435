"""/agenda/integrations/: a practitioner's connected applications.

Granting is the practitioner's own consent to share their agenda with software, so the page is
theirs alone (secretaries, even with "manage", get 403): it lists the apps they granted with
what each may do and what each read of their agenda, grants one more (with a fresh second-factor
code, integrations.forms.GrantForm) and revokes one in a click. Nothing of any appointment is
shown: counts of patients only.
"""

from typing import cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role, User
from audit.actors import actor_for
from audit.registry import audit_exempt
from booking.errors import InvalidInput, NotAllowed, NotVisible
from integrations import services
from integrations.forms import GrantForm
from integrations.selectors import connected_apps
from practitioners.access import agenda_view
from practitioners.models import Practitioner

EXEMPT_REASON = "a practitioner's grants to integrations: counts of patients, no appointment"


def own_practitioner(request: HttpRequest) -> Practitioner:
    if getattr(request.user, "role", None) != Role.PRACTITIONER:
        raise NotAllowed(_("Only the practitioner can connect applications to their agenda."))
    user = cast(User, request.user)
    practitioner = Practitioner.objects.select_related("practice").filter(user=user).first()
    if practitioner is None:
        raise NotVisible(detail="practitioner without an agenda")
    return practitioner


@audit_exempt(EXEMPT_REASON)
@agenda_view
@require_http_methods(["GET", "POST"])
def integrations_page(request: HttpRequest) -> HttpResponse:
    practitioner = own_practitioner(request)
    data = request.POST if request.method == "POST" else None
    form = GrantForm(data, request=request, practitioner=practitioner)
    if form.is_bound and form.is_valid():
        try:
            grant = services.grant_integration(
                actor=actor_for(request),
                practitioner=practitioner,
                integration_id=form.cleaned_data["integration"].pk,
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
            )
        except InvalidInput as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(
                request,
                _("%(name)s is connected to your agenda.") % {"name": grant.integration.name},
            )
            return redirect("agenda-integrations")
    context = {
        "apps": connected_apps(practitioner, now=timezone.now()),
        "form": form,
        "practitioner": practitioner,
        "section": "integrations",
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "integrations/agenda.html", context, status=status)


@audit_exempt(EXEMPT_REASON)
@agenda_view
@require_POST
def revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    practitioner = own_practitioner(request)
    grant = services.revoke_grant(
        actor=actor_for(request), practitioner=practitioner, grant_id=grant_id
    )
    messages.success(
        request,
        _("%(name)s no longer has access to your agenda.") % {"name": grant.integration.name},
    )
    return redirect("agenda-integrations")
