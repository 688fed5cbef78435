"""Public and patient pages (minimal for now: the patient experience is issue #4)."""

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit.actors import actor_for
from booking import services
from booking.errors import InvalidTransition, SlotNotOffered, SlotUnavailable, TooLateToCancel
from booking.forms import BookingForm, SearchForm
from booking.models import Appointment
from booking.selectors import appointments_for
from booking.slots import free_slots_for, next_available
from patients.models import Patient
from practitioners.models import Practitioner, VisitReason
from practitioners.selectors import practitioner_by, search_practitioners, specialties

SEARCH_PAGE_SIZE = 10
PAGE_DAYS = 7


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request, "booking/home.html", {"form": SearchForm(), "specialties": specialties()}
    )


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


def _first_day(request: HttpRequest, practitioner: Practitioner) -> date:
    today = timezone.localdate(timezone=practitioner.practice.tz)
    try:
        asked = date.fromisoformat(request.GET.get("start", ""))
    except ValueError:
        return today
    return max(today, asked)


def practitioner_page(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    first_day = _first_day(request, practitioner)
    days = [first_day + timedelta(days=offset) for offset in range(PAGE_DAYS)]
    grids = []
    if practitioner.online_booking_enabled:
        for reason in practitioner.online_reasons:  # type: ignore[attr-defined]
            slots = free_slots_for(
                practitioner=practitioner, reason=reason, first_day=first_day, days=PAGE_DAYS
            )
            grids.append({"reason": reason, "columns": _columns(practitioner, days, slots)})
    return render(
        request,
        "booking/practitioner.html",
        {
            "practitioner": practitioner,
            "grids": grids,
            "days": days,
            "previous_start": first_day - timedelta(days=PAGE_DAYS),
            "next_start": first_day + timedelta(days=PAGE_DAYS),
            "is_first_page": first_day <= timezone.localdate(timezone=practitioner.practice.tz),
        },
    )


def _columns(practitioner: Practitioner, days: list[date], slots: list[datetime]) -> list[dict]:
    tz = practitioner.practice.tz
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for slot in slots:
        by_day[slot.astimezone(tz).date()].append(slot.astimezone(tz))
    return [{"day": day, "slots": by_day[day]} for day in days]


def _chosen(request: HttpRequest, practitioner: Practitioner) -> tuple[VisitReason, datetime]:
    reasons = {r.pk: r for r in practitioner.online_reasons}  # type: ignore[attr-defined]
    try:
        reason = reasons[int(request.GET.get("reason", ""))]
    except (KeyError, ValueError) as exc:
        raise Http404 from exc
    start = parse_datetime(request.GET.get("start", ""))
    if start is None or timezone.is_naive(start):
        raise Http404
    return reason, start


@login_required
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = _public_practitioner(slug)
    reason, start = _chosen(request, practitioner)
    patient = Patient.objects.filter(user=request.user).first()
    if patient is None:
        messages.error(request, _("Only patient accounts can book online."))
        return redirect(practitioner.get_absolute_url())
    form = BookingForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
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
        except (SlotUnavailable, SlotNotOffered) as exc:
            # Never an error page for a slot taken meanwhile: back to the grid with a message.
            messages.warning(request, exc.message)
            return redirect(practitioner.get_absolute_url())
        messages.success(request, _("Your appointment is booked."))
        return redirect("my-appointments")
    local_start = start.astimezone(practitioner.practice.tz)
    return render(
        request,
        "booking/book.html",
        {"practitioner": practitioner, "reason": reason, "start": local_start, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def my_appointments(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    if request.method == "POST":
        try:
            appointment_id = int(request.POST.get("cancel", ""))
        except ValueError as exc:
            raise Http404 from exc
        try:
            services.cancel_appointment(actor=actor, appointment_id=appointment_id)
        except (TooLateToCancel, InvalidTransition) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Your appointment is cancelled."))
        return redirect("my-appointments")
    page = appointments_for(actor=actor, start_from=timezone.now() - timedelta(days=1), limit=50)
    return render(request, "booking/my_appointments.html", {"appointments": page.items})
