"""My space: the patient's appointments, the booking confirmation, rescheduling, calendar export.

Every read goes through booking.selectors (scoped to the actor and audited); another patient's
appointment raises NotVisible, which the page middleware answers with a 404.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit.actors import actor_for
from audit.models import Action
from audit.registry import audited
from booking import grids, services
from booking.errors import InvalidTransition, SlotNotOffered, SlotUnavailable, TooLateToCancel
from booking.models import Appointment
from booking.selectors import MAX_PAGE_SIZE, access_appointment, appointments_for
from booking.slots import free_slots_for
from notifications.calendar import appointment_ics

MY_APPOINTMENTS_LIMIT = 50
PAST_DAYS = 365


def _appointment_id(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise Http404 from exc


def _changeable(appointment: Appointment, now: datetime) -> bool:
    """Whether the patient may still cancel or move it online (the service decides again)."""
    return (
        appointment.status == Appointment.Status.BOOKED
        and appointment.start - now >= appointment.practitioner.cancellation_notice
    )


@audited
@login_required
@require_http_methods(["GET", "POST"])
def my_appointments(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    if request.method == "POST":
        appointment_id = _appointment_id(request.POST.get("cancel", ""))
        try:
            # Any id the patient may not see (another's, unknown, out of range) raises
            # NotVisible: a 404, recorded as a denial by the middleware.
            services.cancel_appointment(actor=actor, appointment_id=appointment_id)
        except (TooLateToCancel, InvalidTransition) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Your appointment is cancelled."))
        return redirect("my-appointments")
    now = timezone.now()
    upcoming = appointments_for(actor=actor, start_from=now, limit=MY_APPOINTMENTS_LIMIT).items
    past = appointments_for(
        actor=actor,
        start_from=now - timedelta(days=PAST_DAYS),
        start_before=now,
        limit=MAX_PAGE_SIZE,
        newest_first=True,
    ).items
    for appointment in upcoming:
        appointment.changeable = _changeable(appointment, now)  # type: ignore[attr-defined]
    return render(
        request,
        "booking/my_appointments.html",
        {"appointments": upcoming, "past": past},
    )


@audited
@login_required
def appointment_booked(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = access_appointment(actor=actor_for(request), appointment_id=appointment_id)
    return render(request, "booking/booked.html", {"appointment": appointment})


@audited
@login_required
def appointment_calendar(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = access_appointment(
        actor=actor_for(request), appointment_id=appointment_id, action=Action.EXPORT
    )
    summary = _("Appointment with %(name)s") % {"name": appointment.practitioner.display_name}
    response = HttpResponse(
        appointment_ics(appointment, summary=summary), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


def _posted_start(request: HttpRequest) -> datetime | None:
    try:
        start = parse_datetime(request.POST.get("start", ""))
    except (ValueError, OverflowError):
        return None
    if start is None or timezone.is_naive(start):
        return None
    return start.astimezone(UTC)


@audited
@login_required
@require_http_methods(["GET", "POST"])
def reschedule(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The same practitioner's and reason's free slots; choosing one moves the appointment
    atomically (the old one stays if the new time is lost)."""
    actor = actor_for(request)
    error, status = "", 200
    if request.method == "POST":
        start = _posted_start(request)
        try:
            if start is None:
                raise SlotNotOffered(_("Choose one of the free times."), field="start")
            new = services.reschedule_appointment(
                actor=actor, appointment_id=appointment_id, start=start
            )
        except SlotUnavailable:
            error, status = _("This slot has just been taken. Please choose another one."), 409
        except SlotNotOffered as exc:
            error, status = exc.message, 400
        except (TooLateToCancel, InvalidTransition) as exc:
            access_appointment(actor=actor, appointment_id=appointment_id)  # another's: 404
            messages.error(request, exc.message)
            return redirect("my-appointments")
        else:
            messages.success(request, _("Your appointment has been moved."))
            return redirect("appointment-booked", appointment_id=new.pk)
    appointment = access_appointment(actor=actor, appointment_id=appointment_id)
    context = _reschedule_context(request, appointment)
    return render(request, "booking/reschedule.html", {**context, "error": error}, status=status)


def _reschedule_context(request: HttpRequest, appointment: Appointment) -> dict[str, Any]:
    practitioner = appointment.practitioner
    now = timezone.now()
    context: dict[str, Any] = {"appointment": appointment, "practitioner": practitioner}
    if not _changeable(appointment, now):
        return {**context, "changeable": False}
    today = timezone.localdate(timezone=practitioner.practice.tz)
    last_day = today + timedelta(days=practitioner.booking_horizon_days)
    first_day = grids.first_day_asked(request.GET.get("start", ""), today=today, last_day=last_day)
    days = grids.grid_days(first_day)
    slots = free_slots_for(
        practitioner=practitioner,
        reason=appointment.reason,
        first_day=first_day,
        days=len(days),
        now=now,
    )
    columns = grids.columns(practitioner.practice.tz, days, slots, lambda _start: "")
    navigation = grids.week_navigation(first_day, today=today, last_day=last_day)
    return {
        **context,
        "changeable": True,
        "days": days,
        "weeks": grids.weeks(columns),
        "previous_start": _iso(navigation["previous"]),
        "next_start": _iso(navigation["next"]),
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
