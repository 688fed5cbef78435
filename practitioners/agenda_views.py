"""The agenda: day and week views, an appointment's page, and the actions taken from them.

Every view is wrapped by `agenda_view` (practice staff with a second factor). Thin: parse, call a
booking selector or service, render. Appointments are read only through booking.selectors, which
scope them to the actor and record what is shown. booking.middleware turns domain errors into
pages: NotVisible answers 404 (another practitioner's agenda or appointment), NotAllowed 403
(a secretary who may only view). What a user runs into by being slower than someone else (a slot
taken meanwhile) answers a message, never an error page.

Phone booking lives in practitioners.agenda_booking_views.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.actors import Actor, actor_for
from audit.registry import audit_exempt, audited
from booking import services
from booking.errors import (
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotVisible,
    SlotNotOffered,
    SlotUnavailable,
)
from booking.models import Appointment
from booking.selectors import (
    Agenda,
    access_agendas,
    access_appointment,
    agenda_appointments,
    agendas_for,
    choose_agendas,
    ensure_manages_appointment,
    no_show_counts,
    staff_level,
)
from booking.slots import free_slots_for
from practitioners import agenda as grid
from practitioners.access import agenda_view
from practitioners.agenda_forms import BlockForm, CancelForm, MoveForm, StatusForm
from practitioners.models import Practitioner, StaffAccess
from practitioners.services import add_absence

AGENDA_TEMPLATES = "practitioners/agenda/"


# --- Where to go back to ------------------------------------------------------------------------


def agenda_url(*, day: date, practitioner_ids: Sequence[int] = (), view: str = grid.DAY) -> str:
    params: list[tuple[str, str]] = [("view", view)] if view == grid.WEEK else []
    params += [("date", day.isoformat())]
    params += [("practitioner", str(pk)) for pk in practitioner_ids]
    return f"{reverse('agenda')}?{urlencode(params)}"


def agenda_of(appointment: Appointment) -> str:
    tz = appointment.practitioner.practice.tz
    day = appointment.start.astimezone(tz).date()
    return agenda_url(day=day, practitioner_ids=[appointment.practitioner_id])


def back_to_agenda(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """To the agenda page the form was posted from (`next`), else to `fallback`."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe and target.startswith(reverse("agenda")) else fallback)


def when(appointment: Appointment) -> str:
    """The appointment's local time for a message: no name, messages may travel in a cookie."""
    local = appointment.start.astimezone(appointment.practitioner.practice.tz)
    return formats.date_format(local, "l j F, H:i")


# --- Day and week -------------------------------------------------------------------------------


def _sources(actor: Actor, agendas: list[Agenda], start: datetime, end: datetime) -> grid.Sources:
    ids = [agenda.practitioner.pk for agenda in agendas]
    appointments = agenda_appointments(
        actor=actor, practitioner_ids=ids, start_from=start, start_before=end
    )
    no_shows = no_show_counts(
        actor=actor,
        practitioner_ids=ids,
        patient_ids={appointment.patient_id for appointment in appointments},
    )
    return grid.Sources(
        appointments=appointments,
        no_shows=no_shows,
        hours=grid.load_hours(ids),
        absences=grid.load_absences(ids, start, end),
    )


def _navigation(period: grid.Period, ids: list[int], today: date) -> dict[str, str]:
    return {
        "previous": agenda_url(day=period.previous, practitioner_ids=ids, view=period.view),
        "next": agenda_url(day=period.next, practitioner_ids=ids, view=period.view),
        "today": agenda_url(day=today, practitioner_ids=ids, view=period.view),
        "day_view": agenda_url(day=period.day, practitioner_ids=ids),
        "week_view": agenda_url(day=period.day, practitioner_ids=ids, view=grid.WEEK),
    }


def _action_query(agendas: list[Agenda], day: date) -> str:
    """The booking and blocking links' query: the day shown, and the agenda when only one
    shown may be changed."""
    managed = [agenda.practitioner.pk for agenda in agendas if agenda.manages]
    params = [("date", day.isoformat())]
    if len(managed) == 1:
        params.append(("practitioner", str(managed[0])))
    return urlencode(params)


@audited
@agenda_view
@require_GET
def agenda(request: HttpRequest) -> HttpResponse:
    """One practitioner's day or week, or several agendas side by side for a secretary."""
    actor = actor_for(request)
    asked = grid.asked_practitioner_ids(request.GET)
    if asked is None:
        raise NotVisible(detail="malformed practitioner id")
    available = agendas_for(actor)
    chosen = choose_agendas(available, asked)
    agendas = chosen[: grid.MAX_SIDE_BY_SIDE]
    now = timezone.now()
    today = grid.practice_today(agendas, now)
    period = grid.asked_period(request.GET, today=today)
    context: dict[str, Any] = {
        "period": period,
        "agendas": agendas,
        "available": available,
        "asked": asked,
        "more_than_shown": len(chosen) > len(agendas),
        "navigation": _navigation(period, asked, today),
        "manages_any": any(agenda.manages for agenda in agendas),
        "action_query": _action_query(agendas, period.day),
        "quick_actions": period.view == grid.DAY,
        "next_url": request.get_full_path(),
    }
    if agendas:
        start, end = grid.window(agendas, period.days)
        sources = _sources(actor, agendas, start, end)
        context["grid"] = grid.build_grid(
            agendas=agendas, days=period.days, sources=sources, now=now
        )
    return render(request, AGENDA_TEMPLATES + "agenda.html", context)


# --- One appointment ----------------------------------------------------------------------------


@audited
@agenda_view
@require_GET
def appointment_detail(request: HttpRequest, appointment_id: int) -> HttpResponse:
    actor = actor_for(request)
    appointment = access_appointment(actor=actor, appointment_id=appointment_id)
    practitioner_id = appointment.practitioner_id
    counts = no_show_counts(
        actor=actor, practitioner_ids=[practitioner_id], patient_ids=[appointment.patient_id]
    )
    manages = staff_level(actor, practitioner_id) == StaffAccess.Level.MANAGE
    context = {
        "appointment": appointment,
        "no_shows": counts.get((practitioner_id, appointment.patient_id), 0),
        "manages": manages,
        "manages_any": manages,
        "status_actions": grid.status_actions(appointment, now=timezone.now()) if manages else [],
        "cancel_form": CancelForm() if manages else None,
        "agenda_url": agenda_of(appointment),
    }
    return render(request, AGENDA_TEMPLATES + "appointment.html", context)


@audited
@agenda_view
@require_POST
def appointment_cancel(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Cancel with a reason; the service tells the patient (outbox) and frees the slot."""
    actor = actor_for(request)
    ensure_manages_appointment(actor=actor, appointment_id=appointment_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason for the cancellation: it is sent to the patient."))
        return redirect("agenda-appointment", appointment_id=appointment_id)
    try:
        appointment = services.cancel_appointment(
            actor=actor, appointment_id=appointment_id, reason=form.cleaned_data["reason"]
        )
    except InvalidTransition as exc:
        messages.error(request, exc.message)
        return redirect("agenda-appointment", appointment_id=appointment_id)
    messages.success(
        request,
        _("The appointment of %(when)s is cancelled; the patient is told.")
        % {"when": when(appointment)},
    )
    return back_to_agenda(request, agenda_of(appointment))


@audited
@agenda_view
@require_POST
def appointment_status(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Arrived, done, no-show, or back to booked."""
    actor = actor_for(request)
    ensure_manages_appointment(actor=actor, appointment_id=appointment_id)
    form = StatusForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidTransition(_("Choose a status."), field="status")
        appointment = services.mark_status(
            actor=actor, appointment_id=appointment_id, status=form.cleaned_data["status"]
        )
    except InvalidTransition as exc:
        messages.error(request, exc.message)
        return back_to_agenda(request, reverse("agenda-appointment", args=[appointment_id]))
    messages.success(
        request,
        _("The appointment of %(when)s is now: %(status)s.")
        % {"when": when(appointment), "status": appointment.get_status_display()},
    )
    return back_to_agenda(request, agenda_of(appointment))


def _move_day(request: HttpRequest, appointment: Appointment) -> date:
    tz = appointment.practitioner.practice.tz
    today = timezone.now().astimezone(tz).date()
    default = max(today, appointment.start.astimezone(tz).date())
    return grid.asked_day(request.GET.get("date", default.isoformat()), today=today)


def _move_page(
    request: HttpRequest, actor: Actor, appointment_id: int, *, error: str = "", status: int = 200
) -> HttpResponse:
    appointment = access_appointment(actor=actor, appointment_id=appointment_id)
    if appointment.status != Appointment.Status.BOOKED:
        messages.error(request, _("Only a booked appointment can be moved."))
        return redirect("agenda-appointment", appointment_id=appointment_id)
    practitioner: Practitioner = appointment.practitioner
    day = _move_day(request, appointment)
    slots = free_slots_for(
        practitioner=practitioner, reason=appointment.reason, first_day=day, days=1, for_staff=True
    )
    tz = practitioner.practice.tz
    context = {
        "appointment": appointment,
        "day": day,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "slots": [slot.astimezone(tz) for slot in slots if slot != appointment.start],
        "error": error,
        "agenda_url": agenda_of(appointment),
        "manages_any": True,
    }
    return render(request, AGENDA_TEMPLATES + "move.html", context, status=status)


@audited
@agenda_view
@require_http_methods(["GET", "POST"])
def appointment_move(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Another free time of the same reason, on a day chosen on the page; moving is atomic (the
    appointment stays where it was if the new time is lost)."""
    actor = actor_for(request)
    ensure_manages_appointment(actor=actor, appointment_id=appointment_id)
    if request.method == "GET":
        return _move_page(request, actor, appointment_id)
    form = MoveForm(request.POST)
    try:
        if not form.is_valid():
            raise SlotNotOffered(_("Choose one of the free times."), field="start")
        new = services.reschedule_appointment(
            actor=actor, appointment_id=appointment_id, start=form.cleaned_data["start"]
        )
    except SlotUnavailable:
        taken = _("This time has just been booked by someone else: nothing was moved.")
        return _move_page(request, actor, appointment_id, error=taken, status=409)
    except SlotNotOffered as exc:
        return _move_page(request, actor, appointment_id, error=exc.message, status=400)
    except InvalidTransition as exc:
        messages.error(request, exc.message)
        return redirect("agenda-appointment", appointment_id=appointment_id)
    messages.success(request, _("The appointment is moved to %(when)s.") % {"when": when(new)})
    return redirect(agenda_of(new))


# --- Blocking time ------------------------------------------------------------------------------


def managed_agenda(request: HttpRequest, actor: Actor) -> Agenda | None:
    """The agenda an action is for: `?practitioner=` (404 if not the actor's, 403 if view-only),
    else the only one the actor manages; None when they manage several and must choose."""
    params = request.POST if request.method == "POST" else request.GET
    asked = grid.asked_practitioner_ids(params)
    if asked is None:
        raise NotVisible(detail="malformed practitioner id")
    agendas = access_agendas(actor=actor, practitioner_ids=asked[:1])
    managed = [agenda for agenda in agendas if agenda.manages]
    if not managed:
        raise NotAllowed(_("You may view this agenda but not change it."))
    return managed[0] if len(managed) == 1 else None


def choose_agenda(
    request: HttpRequest, actor: Actor, title: str, *, action: str = ""
) -> HttpResponse:
    """Several agendas to act in: which one?"""
    managed = [agenda for agenda in agendas_for(actor) if agenda.manages]
    context = {"agendas": managed, "title": title, "action": action or request.path}
    return render(request, AGENDA_TEMPLATES + "choose.html", context)


def _blocked(actor: Actor, agenda: Agenda, form: BlockForm) -> bool:
    """Whether the range was blocked; if not, why is on the form."""
    if not form.is_valid():
        return False
    start, end = form.bounds(agenda.practitioner.practice.tz)
    try:
        add_absence(
            actor=actor,
            practitioner=agenda.practitioner,
            start=start,
            end=end,
            label=form.cleaned_data["label"],
        )
    except InvalidInput as exc:
        form.add_error(None, exc.message)
        return False
    return True


@audit_exempt("closes a time range: reads no appointment, only counts those inside it")
@agenda_view
@require_http_methods(["GET", "POST"])
def block_time(request: HttpRequest) -> HttpResponse:
    """Close a time range of the agenda (an absence); refused while appointments are in it."""
    actor = actor_for(request)
    agenda = managed_agenda(request, actor)
    if agenda is None:
        return choose_agenda(request, actor, _("Block time"))
    tz = agenda.practitioner.practice.tz
    day = grid.asked_day(request.GET.get("date", ""), today=timezone.now().astimezone(tz).date())
    form = BlockForm(request.POST or None, initial={"day": day})
    if request.method == "POST" and _blocked(actor, agenda, form):
        messages.success(request, _("The time range is blocked in the agenda."))
        start, _end = form.bounds(tz)
        return redirect(agenda_url(day=start.date(), practitioner_ids=[agenda.practitioner.pk]))
    context = {"agenda": agenda, "form": form, "day": day, "manages_any": True}
    status = 400 if request.method == "POST" else 200
    return render(request, AGENDA_TEMPLATES + "block.html", context, status=status)
