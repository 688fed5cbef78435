"""The agenda settings pages: weekly hours, absences, visit reasons, booking rules and team.

Thin: resolve the agenda (`settings_selectors.agenda_choice`: a practitioner's own, or the one a
secretary picked with ?practitioner=<id>), validate a form, call a service, redirect. Anyone
with access sees a page; a change needs "manage" on the agenda (booking rules: being the
practitioner), else 403 and no form is shown. The team page is the practitioner's alone.
A refusal of a service is a form error (400) or a message, never a 500.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.actors import actor_for
from audit.registry import audit_exempt
from booking.errors import InvalidInput
from practitioners import services
from practitioners.access import agenda_view
from practitioners.forms import (
    AbsenceForm,
    AccessForm,
    AddHoursForm,
    BookingRulesForm,
    EditHoursForm,
    MemberForm,
    ReasonForm,
    SettingsForm,
)
from practitioners.models import StaffAccess, VisitReason, WeeklyHours
from practitioners.settings_selectors import (
    AgendaChoice,
    agenda_choice,
    hours_item,
    reason_item,
    reasons_of,
    team_changes,
    team_of,
    upcoming_absences,
    weekly_hours_of,
)

SettingsView = Callable[..., HttpResponse]


def with_agenda(*, post_needs_owner: bool = False) -> Callable[[SettingsView], SettingsView]:
    """Passes the agenda the request works on; refuses a POST from who may not change it."""

    def decorate(view: SettingsView) -> SettingsView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            requested = request.GET.get("practitioner")
            choice = agenda_choice(actor=actor_for(request), requested=requested)
            if choice is None:
                return render(request, "practitioners/settings/no_agenda.html")
            if request.method == "POST":
                choice.ensure_owner() if post_needs_owner else choice.ensure_manages()
            return view(request, choice, *args, **kwargs)

        return wrapper

    return decorate


def page(
    request: HttpRequest, template: str, choice: AgendaChoice, section: str, **context: Any
) -> HttpResponse:
    forms = [value for value in context.values() if isinstance(value, SettingsForm)]
    status = 400 if any(form.is_bound and form.errors for form in forms) else 200
    context |= {"choice": choice, "practitioner": choice.practitioner, "section": section}
    return render(request, f"practitioners/settings/{template}", context, status=status)


def back_to(name: str, choice: AgendaChoice) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse(name) + choice.query)


def posted(request: HttpRequest) -> QueryDict | None:
    return request.POST if request.method == "POST" else None


def reasons_for_hours(choice: AgendaChoice) -> list[VisitReason]:
    return list(choice.practitioner.reasons.order_by("-active", "position", "pk"))


# --- Weekly hours -------------------------------------------------------------------------------


@audit_exempt("agenda settings: opening hours, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda()
def hours(request: HttpRequest, choice: AgendaChoice) -> HttpResponse:
    form = None
    if choice.can_manage:
        form = AddHoursForm(posted(request), reasons=reasons_for_hours(choice))
    if form is not None and form.is_valid():
        try:
            services.add_weekly_hours(
                actor=actor_for(request),
                practitioner=choice.practitioner,
                weekdays=form.cleaned_data["weekdays"],
                spec=form.spec(),
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The opening hours were added."))
            return back_to("agenda-hours", choice)
    rows = weekly_hours_of(choice.practitioner)
    days = [
        (label, [row for row in rows if row.weekday == weekday])
        for weekday, label in WeeklyHours.Weekday.choices
    ]
    return page(request, "hours.html", choice, "hours", days=days, form=form)


@audit_exempt("agenda settings: opening hours, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda()
def hours_edit(request: HttpRequest, choice: AgendaChoice, hours_id: int) -> HttpResponse:
    choice.ensure_manages()  # the page is a form
    row = hours_item(choice.practitioner, hours_id)
    if row is None:
        raise Http404
    form = EditHoursForm(
        posted(request), reasons=reasons_for_hours(choice), initial=EditHoursForm.initial_for(row)
    )
    if form.is_valid():
        try:
            services.change_weekly_hours(
                actor=actor_for(request),
                practitioner=choice.practitioner,
                hours_id=hours_id,
                weekday=form.cleaned_data["weekday"],
                spec=form.spec(),
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The opening hours were changed."))
            return back_to("agenda-hours", choice)
    return page(request, "hours_edit.html", choice, "hours", form=form, row=row)


@audit_exempt("agenda settings: opening hours, no appointment")
@agenda_view
@require_POST
@with_agenda()
def hours_delete(request: HttpRequest, choice: AgendaChoice, hours_id: int) -> HttpResponse:
    services.delete_weekly_hours(
        actor=actor_for(request), practitioner=choice.practitioner, hours_id=hours_id
    )
    messages.success(request, _("The opening hours were deleted."))
    return back_to("agenda-hours", choice)


# --- Absences -----------------------------------------------------------------------------------


@audit_exempt("agenda settings: absences, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda()
def absences(request: HttpRequest, choice: AgendaChoice) -> HttpResponse:
    form = AbsenceForm(posted(request)) if choice.can_manage else None
    with timezone.override(choice.practitioner.practice.tz):  # the practice's wall-clock times
        valid = form is not None and form.is_valid()
    if form is not None and valid:
        try:
            services.add_absence(
                actor=actor_for(request), practitioner=choice.practitioner, **form.cleaned_data
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The absence was added."))
            return back_to("agenda-absences", choice)
    upcoming = upcoming_absences(choice.practitioner, now=timezone.now())
    return page(request, "absences.html", choice, "absences", absences=upcoming, form=form)


@audit_exempt("agenda settings: absences, no appointment")
@agenda_view
@require_POST
@with_agenda()
def absence_delete(request: HttpRequest, choice: AgendaChoice, absence_id: int) -> HttpResponse:
    services.delete_absence(
        actor=actor_for(request), practitioner=choice.practitioner, absence_id=absence_id
    )
    messages.success(request, _("The absence was deleted: its time is open again."))
    return back_to("agenda-absences", choice)


# --- Visit reasons ------------------------------------------------------------------------------


@audit_exempt("agenda settings: visit reasons, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda()
def reasons(request: HttpRequest, choice: AgendaChoice) -> HttpResponse:
    form = ReasonForm(posted(request)) if choice.can_manage else None
    if form is not None and form.is_valid():
        try:
            services.add_visit_reason(
                actor=actor_for(request), practitioner=choice.practitioner, spec=form.spec()
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The visit reason was added."))
            return back_to("agenda-reasons", choice)
    rows = reasons_of(choice.practitioner)
    return page(request, "reasons.html", choice, "reasons", reasons=rows, form=form)


@audit_exempt("agenda settings: visit reasons, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda()
def reason_edit(request: HttpRequest, choice: AgendaChoice, reason_id: int) -> HttpResponse:
    choice.ensure_manages()  # the page is a form
    reason = reason_item(choice.practitioner, reason_id)
    if reason is None:
        raise Http404
    form = ReasonForm(posted(request), initial=ReasonForm.initial_for(reason))
    if form.is_valid():
        try:
            services.change_visit_reason(
                actor=actor_for(request),
                practitioner=choice.practitioner,
                reason_id=reason_id,
                spec=form.spec(),
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The visit reason was changed."))
            return back_to("agenda-reasons", choice)
    return page(request, "reason_edit.html", choice, "reasons", form=form, reason=reason)


@audit_exempt("agenda settings: visit reasons, no appointment")
@agenda_view
@require_POST
@with_agenda()
def reason_active(request: HttpRequest, choice: AgendaChoice, reason_id: int) -> HttpResponse:
    active = request.POST.get("active") == "1"
    services.set_visit_reason_active(
        actor=actor_for(request),
        practitioner=choice.practitioner,
        reason_id=reason_id,
        active=active,
    )
    if active:
        messages.success(request, _("The visit reason is active again."))
    else:
        messages.success(request, _("The visit reason is deactivated: patients no longer see it."))
    return back_to("agenda-reasons", choice)


@audit_exempt("agenda settings: visit reasons, no appointment")
@agenda_view
@require_POST
@with_agenda()
def reason_delete(request: HttpRequest, choice: AgendaChoice, reason_id: int) -> HttpResponse:
    try:
        services.delete_visit_reason(
            actor=actor_for(request), practitioner=choice.practitioner, reason_id=reason_id
        )
    except InvalidInput as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The visit reason was deleted."))
    return back_to("agenda-reasons", choice)


# --- Booking rules ------------------------------------------------------------------------------


@audit_exempt("agenda settings: booking rules, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda(post_needs_owner=True)
def booking_rules(request: HttpRequest, choice: AgendaChoice) -> HttpResponse:
    """Secretaries see the rules (patients ask them); only the practitioner changes them."""
    form = None
    if choice.is_owner:
        initial = BookingRulesForm.initial_for(choice.practitioner)
        form = BookingRulesForm(posted(request), initial=initial)
    if form is not None and form.is_valid():
        try:
            services.update_booking_rules(
                actor=actor_for(request), practitioner=choice.practitioner, rules=form.rules()
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The booking rules were saved."))
            return back_to("agenda-settings", choice)
    return page(request, "booking_rules.html", choice, "settings", form=form)


# --- Team: the practice's secretaries and their access to this agenda ---------------------------


@audit_exempt("practice team and access grants, no appointment")
@agenda_view
@require_http_methods(["GET", "POST"])
@with_agenda(post_needs_owner=True)
def team(request: HttpRequest, choice: AgendaChoice) -> HttpResponse:
    choice.ensure_owner()
    form = MemberForm(posted(request))
    if form.is_valid():
        try:
            added = services.add_practice_member(
                actor=actor_for(request),
                practitioner=choice.practitioner,
                email=form.cleaned_data["email"],
                language=request.LANGUAGE_CODE,
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _member_message(added))
            return back_to("agenda-team", choice)
    context = {
        "form": form,
        "members": team_of(choice.practitioner),
        "changes": team_changes(choice.practitioner),
        "levels": StaffAccess.Level.choices,
    }
    return page(request, "team.html", choice, "team", **context)


def _member_message(added: services.MemberAdded) -> str:
    # Never the address: messages may be kept in a cookie.
    if added.already_member:
        return _("This secretary is already a member of the practice.")
    if added.invited:
        return _("An invitation to create a secretary account was sent.")
    return _("The secretary was added to the practice. Give them access below.")


@audit_exempt("practice team and access grants, no appointment")
@agenda_view
@require_POST
@with_agenda(post_needs_owner=True)
def team_access(request: HttpRequest, choice: AgendaChoice, user_id: int) -> HttpResponse:
    """Grant "view" or "manage" on this agenda, or change it: effective at the next request."""
    form = AccessForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose view or manage."))
        return back_to("agenda-team", choice)
    services.grant_staff_access(
        actor=actor_for(request),
        practitioner=choice.practitioner,
        user_id=user_id,
        level=form.cleaned_data["level"],
    )
    messages.success(request, _("The access was saved: it applies at once."))
    return back_to("agenda-team", choice)


@audit_exempt("practice team and access grants, no appointment")
@agenda_view
@require_POST
@with_agenda(post_needs_owner=True)
def team_withdraw(request: HttpRequest, choice: AgendaChoice, user_id: int) -> HttpResponse:
    services.withdraw_staff_access(
        actor=actor_for(request), practitioner=choice.practitioner, user_id=user_id
    )
    messages.success(request, _("The access was withdrawn: it stops at once."))
    return back_to("agenda-team", choice)


@audit_exempt("practice team and access grants, no appointment")
@agenda_view
@require_POST
@with_agenda(post_needs_owner=True)
def team_remove(request: HttpRequest, choice: AgendaChoice, user_id: int) -> HttpResponse:
    try:
        services.remove_practice_member(
            actor=actor_for(request), practitioner=choice.practitioner, user_id=user_id
        )
    except InvalidInput as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The secretary was removed from the practice."))
    return back_to("agenda-team", choice)
