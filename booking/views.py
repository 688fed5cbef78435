"""Public and patient pages (minimal for now: the patient experience is issue #4).

Thin: parse, call a selector or service, render. Bad input answers a form error, a message or a
404, never a 500; a slot taken meanwhile sends the patient back to the grid with a message.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import Role, User
from audit.actors import actor_for
from booking import services, waitlist
from booking.errors import InvalidTransition, SlotNotOffered, SlotUnavailable, TooLateToCancel
from booking.forms import BookingForm, SearchForm
from booking.models import Appointment
from booking.selectors import appointments_for
from booking.slots import (
    booking_window,
    compute_slots,
    free_slots_for,
    load_schedules,
    next_available,
)
from patients.models import Patient
from practitioners.models import Practice, Practitioner, VisitReason
from practitioners.selectors import practitioner_by, search_practitioners

SEARCH_PAGE_SIZE = 10
PAGE_DAYS = 7
MY_APPOINTMENTS_LIMIT = 50
OPENSTREETMAP_SEARCH = "https://www.openstreetmap.org/search"


def home(request: HttpRequest) -> HttpResponse:
    form = SearchForm()
    return render(request, "booking/home.html", {"form": form, "specialties": form.specialties})


def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    page = None
    if form.is_valid():
        practitioners = search_practitioners(
            specialty=form.cleaned_data["specialty"],
            city=form.cleaned_data["city"],
            q=form.cleaned_data["q"],
        )
        page = Paginator(practitioners, SEARCH_PAGE_SIZE).get_page(request.GET.get("page"))
        earliest = next_available([p for p in page if p.online_booking_enabled])
        for practitioner in page:
            practitioner.next_available = earliest.get(practitioner.pk)  # type: ignore[attr-defined]
    return render(request, "booking/search.html", {"form": form, "page": page})


def _public_practitioner(slug: str) -> Practitioner:
    practitioner = practitioner_by(slug=slug)
    if practitioner is None:
        raise Http404
    return practitioner


def _last_bookable_day(practitioner: Practitioner, today: date) -> date:
    return today + timedelta(days=practitioner.booking_horizon_days)


def _first_day(value: str, *, today: date, last_day: date) -> date:
    """The week asked for in `?start=`; today for garbage, the past or beyond the horizon."""
    try:
        asked = date.fromisoformat(value)
    except ValueError:
        return today
    return asked if today <= asked <= last_day else today


def practitioner_page(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    today = timezone.localdate(timezone=practitioner.practice.tz)
    last_day = _last_bookable_day(practitioner, today)
    first_day = _first_day(request.GET.get("start", ""), today=today, last_day=last_day)
    days = [first_day + timedelta(days=offset) for offset in range(PAGE_DAYS)]
    next_start = first_day + timedelta(days=PAGE_DAYS)
    grids = _slot_grids(practitioner, days) if practitioner.online_booking_enabled else []
    return render(
        request,
        "booking/practitioner.html",
        {
            "practitioner": practitioner,
            "grids": grids,
            "days": days,
            "previous_start": max(today, first_day - timedelta(days=PAGE_DAYS))
            if first_day > today
            else None,
            "next_start": next_start if next_start <= last_day else None,
            "map_url": _map_url(practitioner.practice),
        },
    )


def _slot_grids(practitioner: Practitioner, days: list[date]) -> list[dict[str, Any]]:
    """One grid of free slots per online reason, from a single load of the schedule."""
    schedule = load_schedules([practitioner], days[0], days[-1])[practitioner.pk]
    window = booking_window(practitioner, now=timezone.now())
    book_url = reverse("book", kwargs={"slug": practitioner.slug})
    grids = []
    for reason in practitioner.online_reasons:  # type: ignore[attr-defined]
        slots = compute_slots(
            practitioner=practitioner,
            reason=reason,
            schedule=schedule,
            first_day=days[0],
            last_day=days[-1],
            window=window,
        )
        columns = _columns(practitioner.practice.tz, days, slots, book_url, reason)
        grids.append({"reason": reason, "columns": columns})
    return grids


def _columns(
    tz: ZoneInfo, days: list[date], slots: list[datetime], book_url: str, reason: VisitReason
) -> list[dict[str, Any]]:
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for slot in slots:
        local = slot.astimezone(tz)
        start = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = f"{book_url}?{urlencode({'reason': reason.pk, 'start': start})}"
        by_day[local.date()].append({"start": local, "url": url})
    return [{"day": day, "slots": by_day[day]} for day in days]


def _map_url(practice: Practice) -> str:
    query = f"{practice.address}, {practice.postcode} {practice.city}"
    return f"{OPENSTREETMAP_SEARCH}?{urlencode({'query': query})}"


def _chosen(request: HttpRequest, practitioner: Practitioner) -> tuple[VisitReason, datetime]:
    """The reason and start asked for in the query string; 404 when they are not usable."""
    reasons = {r.pk: r for r in practitioner.online_reasons}  # type: ignore[attr-defined]
    try:
        reason = reasons[int(request.GET.get("reason", ""))]
        # parse_datetime raises ValueError on a well-formed impossible date (30 February).
        start = parse_datetime(request.GET.get("start", ""))
        if start is None or timezone.is_naive(start):
            raise Http404
        start = start.astimezone(UTC)
    except (KeyError, ValueError, OverflowError) as exc:
        raise Http404 from exc
    return reason, start


def _within_horizon(practitioner: Practitioner, start: datetime) -> bool:
    # Also keeps absurd years (9999) away from the date arithmetic of the engine and services.
    today = timezone.localdate(timezone=practitioner.practice.tz)
    day = start.astimezone(practitioner.practice.tz).date()
    return today <= day <= _last_bookable_day(practitioner, today)


def _still_free(practitioner: Practitioner, reason: VisitReason, start: datetime) -> bool:
    """Checked before showing the confirmation; the service checks again (and the database is
    the real guard) when the patient confirms."""
    day = start.astimezone(practitioner.practice.tz).date()
    slots = free_slots_for(practitioner=practitioner, reason=reason, first_day=day, days=1)
    return start in slots


def _back_to_grid(request: HttpRequest, practitioner: Practitioner, message: str) -> HttpResponse:
    messages.warning(request, message)
    return redirect(practitioner.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    reason, start = _chosen(request, practitioner)
    if not practitioner.online_booking_enabled:
        return _back_to_grid(
            request, practitioner, _("This practitioner does not take bookings online.")
        )
    user = cast(User, request.user)  # login_required
    patient = Patient.objects.filter(user=user).first() if user.role == Role.PATIENT else None
    if patient is None:
        return _back_to_grid(request, practitioner, _("Only patient accounts can book online."))
    if not _within_horizon(practitioner, start) or (
        request.method == "GET" and not _still_free(practitioner, reason, start)
    ):
        return _back_to_grid(
            request, practitioner, _("This time is no longer available. Please choose another.")
        )
    form = BookingForm(request.POST if request.method == "POST" else None, patient=patient)
    if form.is_valid():
        try:
            services.book_appointment(
                actor=actor_for(request),
                practitioner=practitioner,
                reason=reason,
                start=start,
                patient=patient,
                relative=form.cleaned_data["relative"],
                channel=Appointment.Channel.WEB,
            )
        except SlotUnavailable:
            # Taken between the confirmation page and the click: back to the grid, no error page.
            return _back_to_grid(
                request,
                practitioner,
                _("This slot has just been taken. Please choose another one."),
            )
        except SlotNotOffered as exc:
            return _back_to_grid(request, practitioner, exc.message)
        messages.success(request, _("Your appointment is booked."))
        return redirect("my-appointments")
    return render(
        request,
        "booking/book.html",
        {"practitioner": practitioner, "reason": reason, "start": start, "form": form},
    )


def _appointment_id(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise Http404 from exc


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
    page = appointments_for(
        actor=actor, start_from=timezone.now() - timedelta(days=1), limit=MY_APPOINTMENTS_LIMIT
    )
    return render(request, "booking/my_appointments.html", {"appointments": page.items})


# --- Waiting list -----------------------------------------------------------------------------
# Refusals a patient can run into by waiting too long or losing a race: a message, not an error
# page. NotVisible (another patient's offer or appointment) still answers 404.
WAITLIST_REFUSALS = (
    waitlist.OfferUnavailable,
    SlotUnavailable,
    SlotNotOffered,
    TooLateToCancel,
    InvalidTransition,
)


@login_required
@require_http_methods(["GET", "POST"])
def waitlist_offer(request: HttpRequest, offer_id: int) -> HttpResponse:
    """The page an offer's message links to: the freed time next to the current one; POST takes
    it."""
    actor = actor_for(request)
    if request.method == "POST":
        try:
            waitlist.take_waitlist_offer(actor=actor, offer_id=offer_id)
        except WAITLIST_REFUSALS as exc:
            messages.warning(request, exc.message)
        else:
            messages.success(request, _("Your appointment has been moved to the earlier time."))
        return redirect("my-appointments")
    offer = waitlist.access_waitlist_offer(actor=actor, offer_id=offer_id)
    appointment = offer.entry.appointment
    return render(
        request,
        "booking/waitlist_offer.html",
        {
            "offer": offer,
            "appointment": appointment,
            "practitioner": appointment.practitioner,
            "new_end": offer.start + appointment.reason.duration,
            "unavailable": waitlist.offer_unavailable_reason(offer, now=timezone.now()),
        },
    )


@login_required
@require_http_methods(["POST"])
def waitlist_join(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Join the waiting list for an earlier slot; with `leave=1`, leave it."""
    actor = actor_for(request)
    try:
        if request.POST.get("leave"):
            waitlist.leave_waitlist(actor=actor, appointment_id=appointment_id)
            done = _("You have left the waiting list.")
        else:
            waitlist.join_waitlist(actor=actor, appointment_id=appointment_id)
            done = _("You are on the waiting list: we will tell you if an earlier slot frees up.")
    except WAITLIST_REFUSALS as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("my-appointments")
