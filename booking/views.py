"""Public pages and the booking flow; the patient's own space is in booking.my_views.

Thin: parse, call a selector or service, render. Bad input answers a form error, a message or a
404, never a 500; a slot taken meanwhile answers a friendly page (409) with the nearest free slots.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import User
from audit.actors import actor_for
from audit.registry import audit_exempt, audited
from booking import grids, services, waitlist
from booking.errors import InvalidTransition, SlotNotOffered, SlotUnavailable, TooLateToCancel
from booking.forms import BookingForm, SearchForm
from booking.models import Appointment
from booking.next_slots import iso_utc, next_slots_for, refresh_stale_next_slots
from booking.slots import booking_window, compute_slots, free_slots_for, load_schedules
from patients.models import Patient
from patients.selectors import patient_for
from patients.services import add_relative
from practitioners.models import Practice, Practitioner, VisitReason
from practitioners.selectors import practitioner_by, search_practitioners

SEARCH_PAGE_SIZE = 10
TAKEN_ALTERNATIVES = 6
OPENSTREETMAP_SEARCH = "https://www.openstreetmap.org/search"


@audit_exempt("public page: specialties and cities, no appointment")
def home(request: HttpRequest) -> HttpResponse:
    form = SearchForm()
    return render(request, "booking/home.html", {"form": form, "specialties": form.specialties})


@audit_exempt("public search: practitioners and their free slots")
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    page = None
    if form.is_valid():
        practitioners = search_practitioners(
            specialty=form.cleaned_data["specialty"],
            city=form.cleaned_data["city"],
            q=form.cleaned_data["q"],
        )
        refresh_stale_next_slots(practitioners=practitioners)  # before sorting by them
        page = Paginator(practitioners, SEARCH_PAGE_SIZE).get_page(request.GET.get("page"))
        slots = next_slots_for(list(page))
        for practitioner in page:
            book_url = reverse("book", kwargs={"slug": practitioner.slug})
            shown = []
            for slot in slots[practitioner.pk]:
                query = urlencode({"reason": slot.reason_id, "start": iso_utc(slot.start)})
                shown.append({"start": slot.start, "url": f"{book_url}?{query}"})
            practitioner.next_slots_shown = shown  # type: ignore[attr-defined]
    return render(request, "booking/search.html", {"form": form, "page": page})


def _public_practitioner(slug: str) -> Practitioner:
    practitioner = practitioner_by(slug=slug)
    if practitioner is None:
        raise Http404
    return practitioner


def _last_bookable_day(practitioner: Practitioner, today: date) -> date:
    return today + timedelta(days=practitioner.booking_horizon_days)


NEW_PATIENT_ANSWERS = {"1": True, "0": False}


def _reasons_for(practitioner: Practitioner, new_patient: bool | None) -> list[VisitReason]:
    """The online reasons, without those reserved to the other kind of patient once the
    visitor has said whether they are new."""
    reasons: list[VisitReason] = practitioner.online_reasons  # type: ignore[attr-defined]
    if new_patient is None:
        return reasons
    excluded = VisitReason.PatientKind.EXISTING if new_patient else VisitReason.PatientKind.NEW
    return [reason for reason in reasons if reason.patient_kind != excluded]


def _page_query(new_answer: str, start: date | None) -> str | None:
    if start is None:
        return None
    query = {"new": new_answer} if new_answer in NEW_PATIENT_ANSWERS else {}
    return "?" + urlencode({**query, "start": start.isoformat()})


@audit_exempt("public page: free slots only, never who booked")
def practitioner_page(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    new_answer = request.GET.get("new", "")
    new_patient = NEW_PATIENT_ANSWERS.get(new_answer)
    today = timezone.localdate(timezone=practitioner.practice.tz)
    last_day = _last_bookable_day(practitioner, today)
    first_day = grids.first_day_asked(request.GET.get("start", ""), today=today, last_day=last_day)
    days = grids.grid_days(first_day)
    reasons = _reasons_for(practitioner, new_patient)
    slot_grids = (
        _slot_grids(practitioner, reasons, days) if practitioner.online_booking_enabled else []
    )
    navigation = grids.week_navigation(first_day, today=today, last_day=last_day)
    return render(
        request,
        "booking/practitioner.html",
        {
            "practitioner": practitioner,
            "grids": slot_grids,
            "days": days,
            "new_answer": new_answer if new_patient is not None else "",
            "previous_url": _page_query(new_answer, navigation["previous"]),
            "next_url": _page_query(new_answer, navigation["next"]),
            "map_url": _map_url(practitioner.practice),
        },
    )


def _book_link(practitioner: Practitioner, reason: VisitReason) -> Callable[[datetime], str]:
    book_url = reverse("book", kwargs={"slug": practitioner.slug})

    def url_for(start: datetime) -> str:
        return f"{book_url}?{urlencode({'reason': reason.pk, 'start': iso_utc(start)})}"

    return url_for


def _slot_grids(
    practitioner: Practitioner, reasons: list[VisitReason], days: list[date]
) -> list[dict[str, Any]]:
    """One grid of free slots per online reason, from a single load of the schedule."""
    schedule = load_schedules([practitioner], days[0], days[-1])[practitioner.pk]
    window = booking_window(practitioner, now=timezone.now())
    slot_grids = []
    for reason in reasons:
        slots = compute_slots(
            practitioner=practitioner,
            reason=reason,
            schedule=schedule,
            first_day=days[0],
            last_day=days[-1],
            window=window,
        )
        columns = grids.columns(
            practitioner.practice.tz, days, slots, _book_link(practitioner, reason)
        )
        slot_grids.append({"reason": reason, "columns": columns, "weeks": grids.weeks(columns)})
    return slot_grids


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


def _slot_taken(
    request: HttpRequest, practitioner: Practitioner, reason: VisitReason, start: datetime
) -> HttpResponse:
    """Someone else was quicker: the nearest free slots of the same reason, not an error page."""
    day = start.astimezone(practitioner.practice.tz).date()
    later = free_slots_for(
        practitioner=practitioner, reason=reason, first_day=day, days=grids.GRID_DAYS
    )
    url_for = _book_link(practitioner, reason)
    tz = practitioner.practice.tz
    alternatives = [
        {"start": slot.astimezone(tz), "url": url_for(slot)} for slot in later if slot > start
    ][:TAKEN_ALTERNATIVES]
    context = {
        "practitioner": practitioner,
        "reason": reason,
        "start": start,
        "alternatives": alternatives,
    }
    return render(request, "booking/slot_taken.html", context, status=409)


@audited
@login_required
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    reason, start = _chosen(request, practitioner)
    if not practitioner.online_booking_enabled:
        return _back_to_grid(
            request, practitioner, _("This practitioner does not take bookings online.")
        )
    patient = patient_for(cast(User, request.user))  # login_required
    if patient is None:
        return _back_to_grid(request, practitioner, _("Only patient accounts can book online."))
    if not _within_horizon(practitioner, start):
        return _back_to_grid(
            request, practitioner, _("This time is no longer available. Please choose another.")
        )
    if request.method == "GET" and not _still_free(practitioner, reason, start):
        return _slot_taken(request, practitioner, reason, start)
    form = BookingForm(request.POST if request.method == "POST" else None, patient=patient)
    if form.is_valid():
        try:
            appointment = _book_for(request, form, practitioner, reason, start, patient)
        except SlotUnavailable:
            # Taken between the confirmation page and the click.
            return _slot_taken(request, practitioner, reason, start)
        except SlotNotOffered as exc:
            return _back_to_grid(request, practitioner, exc.message)
        return redirect("appointment-booked", appointment_id=appointment.pk)
    return render(
        request,
        "booking/book.html",
        {"practitioner": practitioner, "reason": reason, "start": start, "form": form},
    )


def _book_for(
    request: HttpRequest,
    form: BookingForm,
    practitioner: Practitioner,
    reason: VisitReason,
    start: datetime,
    patient: Patient,
) -> Appointment:
    # One transaction for both: a relative added for a slot that was lost meanwhile is not
    # left behind, and the patient can try again with the same form.
    with transaction.atomic():
        relative = form.relative
        if form.adds_relative:
            relative = add_relative(patient=patient, **form.new_relative_fields())
        return services.book_appointment(
            actor=actor_for(request),
            practitioner=practitioner,
            reason=reason,
            start=start,
            patient=patient,
            relative=relative,
            channel=Appointment.Channel.WEB,
        )


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


@audited
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


@audited
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
