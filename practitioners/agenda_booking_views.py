"""Booking for a patient on the phone, from the agenda.

Find the caller among the practitioner's patients (by phone number or name), or create a patient
record without an account; choose a visit reason, a day and one of its free times; book through
booking.services with the phone channel. Names and phone numbers typed by staff travel in POST
bodies only, never in URLs (DESIGN invariant 5): the page's state in its URL is ids and a date.

A time booked online between the page and the click answers 409 with the day's remaining free
times and the form as it was typed; nothing is booked twice (the booking service and the
database's exclusion constraint see to that).
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.actors import Actor, actor_for
from audit.registry import audited
from booking.errors import NotVisible, SlotNotOffered, SlotUnavailable
from booking.models import Appointment
from booking.selectors import Agenda
from booking.services import book_appointment
from booking.slots import free_slots_for
from patients.selectors import PatientMatch, access_patient_of, search_patients_of
from patients.services import create_patient_record
from practitioners import agenda as grid
from practitioners.access import agenda_view
from practitioners.agenda_forms import NewPatientForm, PatientSearchForm, PhoneBookingForm
from practitioners.agenda_views import (
    AGENDA_TEMPLATES,
    agenda_of,
    choose_agenda,
    managed_agenda,
    when,
)
from practitioners.models import Practitioner, VisitReason

NEW_PATIENT = "1"


@dataclass(frozen=True)
class PhoneBooking:
    """Where the booking stands: whose agenda, which day, reason and patient (or a new one)."""

    agenda: Agenda
    day: date
    reasons: list[VisitReason]
    reason: VisitReason | None
    match: PatientMatch | None
    new_patient: bool

    @property
    def practitioner(self) -> Practitioner:
        return self.agenda.practitioner

    @property
    def has_patient(self) -> bool:
        return self.match is not None or self.new_patient

    def hidden(self) -> dict[str, str]:
        """The state as form fields and query parameters: ids and a date, nothing personal."""
        state = {"practitioner": str(self.practitioner.pk), "date": self.day.isoformat()}
        if self.reason is not None:
            state["reason"] = str(self.reason.pk)
        if self.match is not None:
            state["patient"] = str(self.match.patient.pk)
        elif self.new_patient:
            state["new"] = NEW_PATIENT
        return state

    def url(self, **changes: str | None) -> str:
        state = {**self.hidden(), **changes}
        query = urlencode({key: value for key, value in state.items() if value})
        return f"{reverse('agenda-book')}?{query}"


def _asked_id(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise NotVisible(detail="malformed id")
    return int(value)


def _state(request: HttpRequest, actor: Actor, agenda: Agenda) -> PhoneBooking:
    params = request.POST if request.method == "POST" else request.GET
    practitioner = agenda.practitioner
    today = timezone.now().astimezone(practitioner.practice.tz).date()
    reasons = grid.active_reasons(practitioner)
    reason_id = _asked_id(params.get("reason", ""))
    patient_id = _asked_id(params.get("patient", ""))
    match = None
    if patient_id is not None:
        match = access_patient_of(actor=actor, practitioner=practitioner, patient_id=patient_id)
    return PhoneBooking(
        agenda=agenda,
        day=grid.asked_day(params.get("date", ""), today=today),
        reasons=reasons,
        reason=next((reason for reason in reasons if reason.pk == reason_id), None),
        match=match,
        new_patient=match is None and params.get("new") == NEW_PATIENT,
    )


def _free_times(state: PhoneBooking) -> list[datetime]:
    if state.reason is None:
        return []
    slots = free_slots_for(
        practitioner=state.practitioner,
        reason=state.reason,
        first_day=state.day,
        days=1,
        for_staff=True,
    )
    return [slot.astimezone(state.practitioner.practice.tz) for slot in slots]


def _page(
    request: HttpRequest, state: PhoneBooking, *, status: int = 200, **extra: Any
) -> HttpResponse:
    match = state.match
    context = {
        "state": state,
        "slots": _free_times(state),
        "search_form": PatientSearchForm(),
        "booking_form": PhoneBookingForm(
            patient=match.patient if match else None, relatives=match.relatives if match else []
        ),
        "new_form": NewPatientForm() if state.new_patient else None,
        "change_patient_url": state.url(patient=None, new=None),
        "new_patient_url": state.url(patient=None, new=NEW_PATIENT),
        **extra,
    }
    return render(request, AGENDA_TEMPLATES + "book.html", context, status=status)


@audited
@agenda_view
@require_POST
def patient_search(request: HttpRequest) -> HttpResponse:
    """Find the caller among the practitioner's patients; a POST, so the name or number typed
    stays out of URLs and logs. Changes nothing."""
    actor = actor_for(request)
    agenda = managed_agenda(request, actor)
    if agenda is None:
        return choose_agenda(request, actor, _("Book by phone"), action=reverse("agenda-book"))
    state = _state(request, actor, agenda)
    form = PatientSearchForm(request.POST)
    search = None
    if form.is_valid():
        search = search_patients_of(
            actor=actor, practitioner=state.practitioner, query=form.cleaned_data["q"]
        )
    return _page(request, state, search_form=form, search=search, status=200 if search else 400)


@audited
@agenda_view
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    agenda = managed_agenda(request, actor)
    if agenda is None:
        return choose_agenda(request, actor, _("Book by phone"))
    state = _state(request, actor, agenda)
    if request.method == "GET":
        return _page(request, state)
    return _book(request, actor, state)


def _book(request: HttpRequest, actor: Actor, state: PhoneBooking) -> HttpResponse:
    match = state.match
    form = PhoneBookingForm(
        request.POST,
        patient=match.patient if match else None,
        relatives=match.relatives if match else [],
    )
    new_form = NewPatientForm(request.POST) if state.new_patient else None
    forms_shown = {"booking_form": form, "new_form": new_form}
    reason = state.reason
    if reason is None or not state.has_patient:
        error = _("Choose the patient and the visit reason first.")
        return _page(request, state, error=error, status=400, **forms_shown)
    if not form.is_valid() or (new_form is not None and not new_form.is_valid()):
        return _page(request, state, status=400, **forms_shown)
    try:
        appointment = _book_by_phone(actor, state, reason, form, new_form)
    except SlotUnavailable:
        error = _(
            "This time was booked a moment ago, maybe online: nothing was booked. "
            "Choose another time."
        )
        return _page(request, state, error=error, status=409, **forms_shown)
    except SlotNotOffered as exc:
        return _page(request, state, error=exc.message, status=400, **forms_shown)
    messages.success(request, _("Booked by phone: %(when)s.") % {"when": when(appointment)})
    return redirect(agenda_of(appointment))


def _book_by_phone(
    actor: Actor,
    state: PhoneBooking,
    reason: VisitReason,
    form: PhoneBookingForm,
    new_form: NewPatientForm | None,
) -> Appointment:
    # One transaction for both: a record created for a time lost meanwhile is not left behind,
    # and the form, still filled in, can be sent again with another time.
    with transaction.atomic():
        if state.match is not None:
            patient = state.match.patient
        elif new_form is not None:
            patient = create_patient_record(
                actor=actor, practitioner=state.practitioner, **new_form.cleaned_data
            )
        else:  # the caller checked `has_patient`
            raise NotVisible(detail="no patient to book for")
        return book_appointment(
            actor=actor,
            practitioner=state.practitioner,
            reason=reason,
            start=form.cleaned_data["start"],
            patient=patient,
            relative=form.chosen_relative,
            channel=Appointment.Channel.PHONE,
        )
