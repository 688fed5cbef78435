"""Booking for a patient on the phone from the agenda: finding the caller among the
practitioner's patients, or creating a record without an account; a time taken meanwhile.

The `clinic` fixture freezes time at Monday 1 June 2026, 08:00 in Paris (06:00 UTC); its
practitioner is open 08:00-18:00 every day with a 30-minute reason; `clinic.slot` is Tuesday
2 June, 09:00 there.
"""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.crypto import blind_index
from audit.models import AccessEvent, Action
from booking.models import Appointment
from booking.services import book_appointment
from notifications.models import Notification
from patients.models import Patient
from practitioners.models import StaffAccess
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    make_actor,
    secretary_of,
)

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_0900 = "2026-06-02T09:00:00+02:00"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def search(client, clinic, query: str):
    return client.post(
        "/agenda/book/patients/",
        {"practitioner": clinic.practitioner.pk, "date": "2026-06-02", "q": query},
    )


def booking_form(clinic, **fields) -> dict:
    return {
        "practitioner": clinic.practitioner.pk,
        "date": "2026-06-02",
        "reason": clinic.reason.pk,
        "start": TUESDAY_0900,
        **fields,
    }


NEW_PATIENT = {
    "new": "1",
    "first_name": "Gaëlle",
    "last_name": "Nouvelle",
    "phone": "07 98 76 54 32",
    "email": "",
    "birth_date": "1990-04-02",
}

# --- Finding the caller -----------------------------------------------------------------------


def test_search_finds_a_patient_of_the_practitioner_by_phone(staff, clinic, known):
    response = search(staff, clinic, "+33 6 12 34 56 78")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Éloïse Lefèvre" in html
    assert f"patient={known.pk}" in html
    event = AccessEvent.objects.get(action=Action.SEARCH)
    assert (event.patient_id, event.practitioner_id, event.detail) == (
        known.pk,
        clinic.practitioner.pk,
        "by phone",
    )


@pytest.mark.parametrize(
    "query", ["eloise lefevre", "LEFÈVRE", "lefev", "Éloïse", "lefèvre éloïse"]
)
def test_search_finds_by_name_whatever_the_case_and_accents(staff, clinic, known, query):
    html = search(staff, clinic, query).content.decode()

    assert "1 patient found." in html
    assert "Éloïse Lefèvre" in html


def test_search_by_a_relatives_name_finds_who_brought_them(staff, clinic, known):
    html = search(staff, clinic, "timothee").content.decode()

    assert "Éloïse Lefèvre" in html
    assert "Also brought: Timothée Lefèvre" in html


def test_search_never_finds_patients_of_other_practitioners(staff, clinic, colleague):
    stranger = PatientFactory(first_name="Éloïse", last_name="Lefèvre", phone="0611111111")
    AppointmentFactory(practitioner=colleague, patient=stranger, start=at(2, 10))

    by_name = search(staff, clinic, "lefevre").content.decode()
    by_phone = search(staff, clinic, "0611111111").content.decode()

    assert "No patient of this practitioner has this name." in by_name
    assert "No patient of this practitioner has this phone number." in by_phone
    assert "Éloïse" not in by_name + by_phone
    assert set(
        AccessEvent.objects.filter(action=Action.SEARCH).values_list("patient_id", flat=True)
    ) == {None}


def test_search_results_show_no_shows(staff, clinic, known):
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=known,
        start=at(1, 7),
        status=Appointment.Status.NO_SHOW,
    )

    html = search(staff, clinic, "lefevre").content.decode()

    assert '<span class="no-shows">1 no-show</span>' in html


def test_the_search_is_posted_so_names_stay_out_of_urls(staff, clinic):
    html = staff.get(f"/agenda/book/?practitioner={clinic.practitioner.pk}").content.decode()

    assert re.search(r'<form method="post" action="/agenda/book/patients/" role="search"', html)
    assert staff.get("/agenda/book/patients/").status_code == 405


def test_too_short_a_query_is_a_form_error(staff, clinic, known):
    response = search(staff, clinic, "l")

    assert response.status_code == 400
    assert not AccessEvent.objects.filter(action=Action.SEARCH).exists()


def test_search_costs_the_same_for_three_or_thirty_patients(staff, clinic):
    def patients(count: int) -> None:
        for _ in range(count):
            AppointmentFactory(
                practitioner=clinic.practitioner,
                reason=clinic.reason,
                patient=PatientFactory(last_name="Martin"),
                start=at(1, 7) - timedelta(days=Patient.objects.count()),
            )

    patients(3)
    with CaptureQueriesContext(connection) as three:
        search(staff, clinic, "martin")
    patients(27)
    with CaptureQueriesContext(connection) as thirty:
        response = search(staff, clinic, "martin")

    assert "More patients match" in response.content.decode()  # 20 shown
    assert len(three) == len(thirty)


# --- Booking ----------------------------------------------------------------------------------


def test_the_booking_page_offers_the_days_free_times(staff, clinic, known):
    url = (
        f"/agenda/book/?practitioner={clinic.practitioner.pk}&date=2026-06-02"
        f"&reason={clinic.reason.pk}&patient={known.pk}"
    )

    html = staff.get(url).content.decode()

    assert f'value="{TUESDAY_0900}"' in html
    assert 'value="2026-06-02T08:00:00+02:00"' in html
    assert "Timothée Lefèvre" in html  # may be booked for the child


def test_booking_an_existing_patient_by_phone(staff, clinic, known):
    response = staff.post("/agenda/book/", booking_form(clinic, patient=known.pk))

    appointment = Appointment.objects.get(start=clinic.slot)
    assert response.status_code == 302
    assert response["Location"] == (
        f"/agenda/?date=2026-06-02&practitioner={clinic.practitioner.pk}"
    )
    assert (appointment.patient, appointment.relative, appointment.channel) == (
        known,
        None,
        Appointment.Channel.PHONE,
    )
    assert appointment.booked_by == clinic.practitioner.user
    assert Notification.objects.filter(
        appointment=appointment, kind=Notification.Kind.CONFIRMATION
    ).exists()
    assert (
        "Booked by phone: Tuesday 2 June, 09:00."
        in staff.get(response["Location"]).content.decode()
    )


def test_booking_for_a_relative_the_patient_brought_before(staff, clinic, known):
    child = known.relatives.get()

    staff.post("/agenda/book/", booking_form(clinic, patient=known.pk, relative=child.pk))

    assert Appointment.objects.get(start=clinic.slot).relative == child


def test_booking_a_new_patient_creates_a_record_without_an_account(staff, clinic):
    response = staff.post("/agenda/book/", booking_form(clinic, **NEW_PATIENT))

    assert response.status_code == 302
    patient = Patient.objects.get(phone_index=blind_index("0798765432", kind="phone"))
    assert patient.user is None
    assert (patient.first_name, patient.last_name, str(patient.birth_date)) == (
        "Gaëlle",
        "Nouvelle",
        "1990-04-02",
    )
    assert Appointment.objects.get(start=clinic.slot).patient == patient
    assert AccessEvent.objects.filter(
        action=Action.CREATE, patient_id=patient.pk, appointment_id=None
    ).exists()


def test_a_new_patient_without_phone_is_a_form_error(staff, clinic):
    response = staff.post("/agenda/book/", booking_form(clinic, **{**NEW_PATIENT, "phone": ""}))

    assert response.status_code == 400
    assert not Patient.objects.filter(user__isnull=True).exists()
    assert not Appointment.objects.exists()


def test_a_time_booked_online_meanwhile_answers_409_and_books_once(staff, clinic):
    page = staff.get(
        f"/agenda/book/?practitioner={clinic.practitioner.pk}&date=2026-06-02"
        f"&reason={clinic.reason.pk}&new=1"
    )
    assert f'value="{TUESDAY_0900}"' in page.content.decode()
    online = book_appointment(
        actor=make_actor(clinic.patient.user),
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        patient=clinic.patient,
    )

    response = staff.post("/agenda/book/", booking_form(clinic, **NEW_PATIENT))

    assert response.status_code == 409
    html = response.content.decode()
    assert "This time was booked a moment ago, maybe online: nothing was booked." in html
    assert f'value="{TUESDAY_0900}"' not in html  # no longer offered
    assert 'value="Nouvelle"' in html  # what was typed is kept
    assert list(Appointment.objects.filter(start=clinic.slot)) == [online]
    assert not Patient.objects.filter(user__isnull=True).exists()  # the record is rolled back


def test_a_time_not_offered_answers_400(staff, clinic, known):
    response = staff.post(
        "/agenda/book/",
        booking_form(clinic, patient=known.pk, start="2026-06-02T09:10:00+02:00"),
    )

    assert response.status_code == 400
    assert "This time is not offered for booking." in response.content.decode()
    assert not Appointment.objects.filter(start__date="2026-06-02").exists()


def test_another_practitioners_patient_cannot_be_booked_by_id(staff, clinic, colleague):
    stranger = PatientFactory()
    AppointmentFactory(practitioner=colleague, patient=stranger, start=at(2, 10))

    response = staff.post("/agenda/book/", booking_form(clinic, patient=stranger.pk))

    assert response.status_code == 404
    assert not Appointment.objects.filter(patient=stranger, practitioner=clinic.practitioner)


def test_a_secretary_with_two_agendas_chooses_one_first(client, clinic, colleague, otp_login):
    secretary = secretary_of(clinic.practitioner)
    StaffAccess.objects.create(
        practitioner=colleague, user=secretary, level=StaffAccess.Level.MANAGE
    )
    otp_login(client, secretary)

    html = client.get("/agenda/book/").content.decode()

    assert f'href="/agenda/book/?practitioner={clinic.practitioner.pk}"' in html
    assert f'href="/agenda/book/?practitioner={colleague.pk}"' in html


def test_a_secretary_books_on_behalf_of_the_practitioner(client, clinic, known, otp_login):
    secretary = secretary_of(clinic.practitioner)
    otp_login(client, secretary)

    client.post("/agenda/book/", booking_form(clinic, patient=known.pk))

    appointment = Appointment.objects.get(start=clinic.slot)
    event = AccessEvent.objects.get(action=Action.CREATE, appointment_id=appointment.pk)
    assert (event.actor_user_id, event.on_behalf_of_id) == (secretary.pk, clinic.practitioner.pk)
