"""Public and patient pages: search, practitioner, booking, my appointments, login.

The `clinic` fixture freezes time at Monday 1 June 2026, 08:00 in Paris (06:00 UTC); its
practitioner is open 08:00-18:00 local every day with a 30-minute reason and 60 minutes' notice.
"""

import re
from datetime import datetime, time, timedelta
from urllib.parse import quote, unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AccessEvent, Action
from booking.models import Appointment
from booking.next_slots import refresh_next_slots
from practitioners.models import Practitioner
from tests.factories import (
    PASSWORD,
    AppointmentFactory,
    PatientFactory,
    PracticeFactory,
    PractitionerFactory,
    RelativeFactory,
    SpecialtyFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
)

TOMORROW_0900_UTC = "2026-06-02T07:00:00Z"  # 09:00 in Paris (CEST, UTC+2)


def book_url(practitioner, reason, start: str) -> str:
    return f"/book/{practitioner.slug}/?reason={reason.pk}&start={quote(start)}"


def slot_link(practitioner, reason, start: str) -> str:
    """How the practitioner page links a free slot to the booking page."""
    return f"/book/{practitioner.slug}/?reason={reason.pk}&amp;start={quote(start)}"


def open_every_day(practitioner, *, start: time = time(8), end: time = time(18)) -> None:
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=start, end_time=end
        )


def slot_starts(response, *, day: int, grid: int = 0) -> list[datetime]:
    """The local starts offered on the `day`-th column of a practitioner page's grid."""
    return [slot["start"] for slot in response.context["grids"][grid]["columns"][day]["slots"]]


@pytest.fixture
def client(client):
    """English pages, so assertions read the source strings whatever the catalogs hold; tests
    of the French default ask for it explicitly."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def patient_client(client, clinic):
    client.force_login(clinic.patient.user)
    return client


# --- Home and search ------------------------------------------------------------------------


def test_home_renders_the_search_form_with_specialties(client, db):
    SpecialtyFactory(name="Cardiologie", slug="cardiologie")
    SpecialtyFactory(name="Dermatologie", slug="dermatologie")

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="search"' in html
    for field in ("specialty", "city", "q"):
        assert f'<label for="id_{field}"' in html
    assert '<option value="cardiologie">Cardiologie</option>' in html
    assert '/search/?specialty=dermatologie"' in html


def test_home_declares_the_active_language(client, db):
    assert '<html lang="fr">' in client.get("/", HTTP_ACCEPT_LANGUAGE="").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en">' in english.content.decode()


def test_search_without_parameters_shows_the_form_only(client, db):
    PractitionerFactory()

    response = client.get("/search/")

    assert response.status_code == 200
    assert response.context["page"] is None
    assert 'role="search"' in response.content.decode()


def test_search_filters_by_specialty_slug(client, db):
    cardio = PractitionerFactory(specialty=SpecialtyFactory(slug="cardiologie"))
    derma = PractitionerFactory(specialty=SpecialtyFactory(slug="dermatologie"))

    response = client.get("/search/", {"specialty": "cardiologie"})

    assert response.status_code == 200
    assert list(response.context["page"]) == [cardio]
    assert derma.get_absolute_url() not in response.content.decode()


def test_search_matches_city_prefix_case_insensitively(client, db):
    lyon = PractitionerFactory(practice=PracticeFactory(city="Lyon"))
    PractitionerFactory(practice=PracticeFactory(city="Paris"))

    for city in ("ly", "LYO", " lyon "):
        response = client.get("/search/", {"city": city})
        assert list(response.context["page"]) == [lyon], city


def test_search_matches_every_name_word(client, db):
    wanted = PractitionerFactory(first_name="Camille", last_name="Durand")
    PractitionerFactory(first_name="Camille", last_name="Martin")
    PractitionerFactory(first_name="Louis", last_name="Durand")

    response = client.get("/search/", {"q": "camille DURAND"})

    assert list(response.context["page"]) == [wanted]


def test_search_shows_next_availability_in_practice_time(client, clinic):
    response = client.get("/search/", {"q": clinic.practitioner.last_name})

    html = response.content.decode()
    # 08:00 now + 60 minutes' notice: the first slot is today 09:00 in Paris.
    assert '<time datetime="2026-06-01T09:00:00+02:00">' in html


def test_search_says_when_there_is_no_online_availability(client, db):
    PractitionerFactory(last_name="Sansplage")  # no hours, no reason

    response = client.get("/search/", {"q": "sansplage"})

    assert "No online availability soon." in response.content.decode()


def test_search_paginates_and_keeps_the_filters(client, db):
    specialty = SpecialtyFactory(slug="pediatrie")
    for _ in range(15):
        PractitionerFactory(specialty=specialty)

    first = client.get("/search/", {"specialty": "pediatrie"})
    second = client.get("/search/", {"specialty": "pediatrie", "page": "2"})

    assert len(first.context["page"]) == 10
    assert "?specialty=pediatrie&amp;page=2" in first.content.decode()
    assert len(second.context["page"]) == 5
    assert "?specialty=pediatrie&amp;page=1" in second.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"specialty": "no-such-specialty"},
        {"q": "x" * 500},
        {"city": "y" * 500},
        {"q": "nul\x00byte"},
        {"city": "nul\x00byte"},
        {"specialty": ["a", "b"], "page": "-3"},
        {"page": "not-a-number"},
        {"page": "99999999999999999999999"},
    ],
)
def test_search_with_bad_parameters_answers_a_form_error_or_an_empty_page(client, db, params):
    PractitionerFactory()

    response = client.get("/search/", params)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors or response.context["page"] is not None


def test_search_form_error_is_shown_and_tied_to_its_field(client, db):
    response = client.get("/search/", {"specialty": "no-such-specialty"})

    html = response.content.decode()
    assert response.context["form"].errors["specialty"]
    assert 'id="id_specialty_error"' in html
    assert 'aria-invalid="true"' in html


def test_search_query_count_does_not_grow_with_the_page(client, db, django_assert_max_num_queries):
    specialty = SpecialtyFactory(slug="generaliste")
    for _ in range(15):
        practitioner = PractitionerFactory(specialty=specialty)
        VisitReasonFactory(practitioner=practitioner)
        VisitReasonFactory(practitioner=practitioner, label="Suivi")
        open_every_day(practitioner)
    one = PractitionerFactory(specialty=specialty, last_name="Unique")
    VisitReasonFactory(practitioner=one)
    open_every_day(one)
    # The hooks fill the next-slots table after commit, which a test's transaction never
    # reaches; tests/booking/test_next_slots.py budgets the refresh itself.
    refresh_next_slots(practitioner_ids=Practitioner.objects.values_list("pk", flat=True))

    with CaptureQueriesContext(connection) as single:
        client.get("/search/", {"q": "unique"})
    with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as full:
        response = client.get("/search/", {"specialty": "generaliste"})

    assert len(response.context["page"]) == 10
    assert len(full) <= len(single) + 1  # +1: the page count, skipped for a single short page


def test_home_query_budget(client, db, django_assert_max_num_queries):
    for _ in range(8):
        SpecialtyFactory()
    with django_assert_max_num_queries(1):  # the specialties, for the form and the list
        client.get("/")


# --- Practitioner page ----------------------------------------------------------------------


def test_practitioner_page_shows_fourteen_local_days_of_free_slots(client, clinic):
    response = client.get(clinic.practitioner.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    columns = response.context["grids"][0]["columns"]
    assert [column["day"].isoformat() for column in columns] == [
        f"2026-06-{day:02d}" for day in range(1, 15)
    ]
    assert [len(week) for week in response.context["grids"][0]["weeks"]] == [7, 7]
    tomorrow = slot_starts(response, day=1)
    assert tomorrow[0] == datetime.combine(clinic.slot.date(), time(8), tzinfo=clinic.tz)
    assert clinic.slot in tomorrow
    assert slot_link(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC) in html
    assert '<time datetime="2026-06-02">' in html
    # Local times, not UTC: 08:00 in Paris would be 06:00 UTC.
    assert ">09:00<" in html
    assert ">06:00<" not in html


def test_practitioner_page_hides_taken_slots(client, clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = client.get(clinic.practitioner.get_absolute_url())

    assert clinic.slot not in slot_starts(response, day=1)
    assert slot_link(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC) not in (
        response.content.decode()
    )


def test_practitioner_page_shows_a_slot_freed_by_a_cancellation(client, clinic):
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        status=Appointment.Status.CANCELLED,
    )

    response = client.get(clinic.practitioner.get_absolute_url())

    assert clinic.slot in slot_starts(response, day=1)


def test_practitioner_page_hides_reasons_not_bookable_online(client, clinic):
    VisitReasonFactory(
        practitioner=clinic.practitioner, label="Acte sur place", online_bookable=False
    )
    VisitReasonFactory(practitioner=clinic.practitioner, label="Ancien motif", active=False)

    response = client.get(clinic.practitioner.get_absolute_url())

    html = response.content.decode()
    assert [grid["reason"] for grid in response.context["grids"]] == [clinic.reason]
    assert "Acte sur place" not in html
    assert "Ancien motif" not in html


def test_practitioner_page_navigates_by_week(client, clinic):
    url = clinic.practitioner.get_absolute_url()

    first = client.get(url)
    second = client.get(url, {"start": "2026-06-08"})

    assert 'href="?start=2026-06-08"' in first.content.decode()
    assert "Previous week" not in first.content.decode()
    assert response_days(second)[0] == "2026-06-08"
    assert 'href="?start=2026-06-01"' in second.content.decode()
    assert 'href="?start=2026-06-15"' in second.content.decode()


def response_days(response) -> list[str]:
    return [day.isoformat() for day in response.context["days"]]


@pytest.mark.parametrize(
    "start",
    [
        "garbage",
        "2020-01-01",
        "2026-05-31",
        "2026-02-30",
        "",
        "\x00",
        "9" * 50,
        # Beyond the 60-day horizon nothing is bookable; 9999 must not overflow either.
        "2026-08-01",
        "9999-12-25",
        "9999-12-31",
    ],
)
def test_practitioner_page_starts_today_for_garbage_past_or_beyond_horizon(client, clinic, start):
    response = client.get(clinic.practitioner.get_absolute_url(), {"start": start})

    assert response.status_code == 200
    assert response_days(response)[0] == "2026-06-01"


def test_practitioner_page_week_can_start_on_any_day_within_the_horizon(client, clinic):
    response = client.get(clinic.practitioner.get_absolute_url(), {"start": "2026-06-03"})

    assert response_days(response) == [f"2026-06-{day:02d}" for day in range(3, 17)]
    assert 'href="?start=2026-06-01"' in response.content.decode()  # not before today


def test_practitioner_page_stops_offering_next_week_past_the_horizon(client, clinic):
    clinic.practitioner.booking_horizon_days = 10
    clinic.practitioner.save()

    response = client.get(clinic.practitioner.get_absolute_url(), {"start": "2026-06-08"})

    assert "Next week" not in response.content.decode()


def test_unknown_practitioner_answers_404_with_the_site_layout(client, db):
    response = client.get("/practitioners/nobody-here/")

    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert 'href="/"' in response.content.decode()


def test_slot_links_name_the_reason_day_and_time_for_screen_readers(client, clinic):
    url = clinic.practitioner.get_absolute_url()
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    # The day's and month's names follow the active language (French by default).
    assert re.search(r'aria-label="Consultation, mardi 2 juin [^"]*09:00"', html, re.IGNORECASE)
    assert '<time datetime="2026-06-02T09:00:00+02:00">09:00</time>' in html


def test_practitioner_without_online_booking_shows_a_message_and_no_slot(client, clinic):
    clinic.practitioner.online_booking_enabled = False
    clinic.practitioner.save()

    response = client.get(clinic.practitioner.get_absolute_url())

    html = response.content.decode()
    assert "does not take bookings online" in html
    assert "/book/" not in html
    assert response.context["grids"] == []


def test_practitioner_page_links_the_address_to_openstreetmap(client, clinic):
    practice = clinic.practitioner.practice
    practice.address, practice.postcode, practice.city = "12 rue de la Paix", "69001", "Lyon"
    practice.save()

    html = client.get(clinic.practitioner.get_absolute_url()).content.decode()

    assert (
        'href="https://www.openstreetmap.org/search?query=12+rue+de+la+Paix%2C+69001+Lyon"' in html
    )


def test_practitioner_page_query_budget(client, clinic, django_assert_max_num_queries):
    for label in ("Suivi", "Vaccin", "Certificat"):
        VisitReasonFactory(practitioner=clinic.practitioner, label=label)
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    # Practitioner, reasons, hours (+ their reasons), absences, appointments: once for all reasons.
    with django_assert_max_num_queries(6):
        response = client.get(clinic.practitioner.get_absolute_url())

    assert len(response.context["grids"]) == 4


# --- Booking --------------------------------------------------------------------------------


def test_booking_requires_login(client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    response = client.get(url)

    assert response.status_code == 302
    login, _, next_url = response.url.partition("?next=")
    assert login == "/accounts/login/"
    assert unquote(next_url) == url


def test_booking_page_shows_a_confirmation_in_practice_time(patient_client, clinic):
    response = patient_client.get(book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<time datetime="2026-06-02T09:00:00+02:00">' in html
    assert "09:00" in html
    assert "<legend>For whom is this appointment?</legend>" in html
    assert 'name="for_whom" value="me"' in html
    for field in ("first_name", "last_name", "birth_date"):
        assert f'<label for="id_{field}"' in html
    assert not Appointment.objects.exists()


def test_booking_books_and_shows_the_confirmation_page(patient_client, clinic):
    response = patient_client.post(
        book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC),
        {"for_whom": "me"},
        follow=True,
    )

    appointment = Appointment.objects.get()
    assert response.redirect_chain == [(f"/me/appointments/{appointment.pk}/booked/", 302)]
    assert (appointment.patient, appointment.start, appointment.relative) == (
        clinic.patient,
        clinic.slot,
        None,
    )
    assert appointment.channel == Appointment.Channel.WEB
    html = response.content.decode()
    assert "Your appointment is booked" in html
    assert '<time datetime="2026-06-02T09:00:00+02:00">' in html
    assert f'href="/me/appointments/{appointment.pk}/calendar.ics"' in html
    assert AccessEvent.objects.filter(appointment_id=appointment.pk, action=Action.VIEW).exists()


def test_booking_for_a_relative(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient, first_name="Léa")
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    form_page = patient_client.get(url)
    response = patient_client.post(url, {"for_whom": str(relative.pk)}, follow=True)

    assert "Léa" in form_page.content.decode()
    assert Appointment.objects.get().relative == relative
    assert "Léa" in response.content.decode()


def test_booking_for_another_patients_relative_is_a_form_error(patient_client, clinic):
    stranger = RelativeFactory(managed_by=PatientFactory(), first_name="Inconnu")
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    form_page = patient_client.get(url)
    response = patient_client.post(url, {"for_whom": str(stranger.pk)})

    assert "Inconnu" not in form_page.content.decode()
    assert response.status_code == 200
    assert response.context["form"].errors["for_whom"]
    assert not Appointment.objects.exists()


def test_slot_taken_meanwhile_answers_409_with_the_nearest_free_slots(patient_client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)
    assert patient_client.get(url).status_code == 200
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = patient_client.post(url, {"for_whom": "me"})

    assert response.status_code == 409
    html = response.content.decode()
    assert "This time has just been taken" in html
    starts = [slot["start"] for slot in response.context["alternatives"]]
    # The next six free starts after 09:00 (09:00-09:30 is taken), in practice time.
    assert starts == [
        datetime.combine(clinic.slot.date(), time(hour, minute), tzinfo=clinic.tz)
        for hour, minute in ((9, 30), (10, 0), (10, 30), (11, 0), (11, 30), (12, 0))
    ]
    assert slot_link(clinic.practitioner, clinic.reason, "2026-06-02T07:30:00Z") in html
    assert Appointment.objects.filter(patient=clinic.patient).count() == 0


def test_confirmation_page_for_a_slot_no_longer_free_answers_409(patient_client, clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = patient_client.get(book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC))

    assert response.status_code == 409
    assert len(response.context["alternatives"]) == 6


def test_booking_for_a_relative_added_inline(patient_client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    response = patient_client.post(
        url,
        {
            "for_whom": "new",
            "first_name": "Jules",
            "last_name": "Martin",
            "birth_date": "2019-04-03",
        },
        follow=True,
    )

    appointment = Appointment.objects.get()
    relative = appointment.relative
    assert relative is not None
    assert (relative.managed_by, relative.first_name, relative.birth_date.isoformat()) == (
        clinic.patient,
        "Jules",
        "2019-04-03",
    )
    assert "Jules Martin" in response.content.decode()


def test_adding_a_relative_inline_requires_their_names_and_birth_date(patient_client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    response = patient_client.post(url, {"for_whom": "new", "first_name": "Jules"})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"last_name", "birth_date"}
    html = response.content.decode()
    assert 'aria-describedby="id_last_name_error"' in html
    assert not Appointment.objects.exists()
    assert not clinic.patient.relatives.exists()


def test_relative_added_inline_for_a_lost_slot_is_not_kept(patient_client, clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    response = patient_client.post(
        url,
        {
            "for_whom": "new",
            "first_name": "Jules",
            "last_name": "Martin",
            "birth_date": "2019-04-03",
        },
    )

    assert response.status_code == 409
    assert not clinic.patient.relatives.exists()


def test_booking_a_time_not_offered_is_refused_with_a_message(patient_client, clinic):
    # 09:10 is not on the 30-minute grid.
    response = patient_client.post(
        book_url(clinic.practitioner, clinic.reason, "2026-06-02T07:10:00Z"),
        {"for_whom": "me"},
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == clinic.practitioner.get_absolute_url()
    assert not Appointment.objects.exists()


def test_booking_when_online_booking_is_off_is_refused_with_a_message(patient_client, clinic):
    clinic.practitioner.online_booking_enabled = False
    clinic.practitioner.save()
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    for response in (patient_client.get(url, follow=True), patient_client.post(url, follow=True)):
        assert response.status_code == 200
        assert response.redirect_chain[-1][0] == clinic.practitioner.get_absolute_url()
        assert "does not take bookings online" in response.content.decode()
    assert not Appointment.objects.exists()


def test_booking_by_an_account_without_patient_profile_is_refused_with_a_message(
    client, clinic, otp_login
):
    otp_login(client, clinic.practitioner.user)

    response = client.get(
        book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC), follow=True
    )

    assert response.status_code == 200
    assert "Only patient accounts can book online." in response.content.decode()


@pytest.mark.parametrize(
    ("reason", "start"),
    [
        ("", TOMORROW_0900_UTC),
        ("abc", TOMORROW_0900_UTC),
        ("999999", TOMORROW_0900_UTC),
        ("9" * 5000, TOMORROW_0900_UTC),
        ("{reason}", ""),
        ("{reason}", "tomorrow"),
        ("{reason}", "2026-06-02T09:00:00"),  # naive: ambiguous
        ("{reason}", "2026-02-30T09:00:00Z"),  # well-formed, no such day
        ("{reason}", "2026-06-02T25:00:00Z"),
        ("{reason}", "9999-12-31T23:59:59-23:59"),
        ("{reason}", "nul\x00"),
    ],
)
def test_booking_with_garbage_reason_or_start_answers_404(patient_client, clinic, reason, start):
    reason = reason.format(reason=clinic.reason.pk)
    url = f"/book/{clinic.practitioner.slug}/"

    assert patient_client.get(url, {"reason": reason, "start": start}).status_code == 404


def test_booking_another_practitioners_or_an_offline_reason_answers_404(patient_client, clinic):
    other_reason = VisitReasonFactory()
    offline = VisitReasonFactory(practitioner=clinic.practitioner, online_bookable=False)

    for reason in (other_reason, offline):
        url = book_url(clinic.practitioner, reason, TOMORROW_0900_UTC)
        assert patient_client.get(url).status_code == 404
        assert patient_client.post(url).status_code == 404
    assert not Appointment.objects.exists()


def test_booking_unknown_practitioner_answers_404(patient_client, clinic):
    url = f"/book/nobody/?reason={clinic.reason.pk}&start={TOMORROW_0900_UTC}"
    assert patient_client.get(url).status_code == 404


# --- My appointments ------------------------------------------------------------------------


def test_my_appointments_lists_only_mine(patient_client, clinic):
    mine = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=clinic.patient
    )
    theirs = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )

    response = patient_client.get("/me/appointments/")

    assert response.status_code == 200
    assert list(response.context["appointments"]) == [mine]
    html = response.content.decode()
    assert f'value="{mine.pk}"' in html
    assert f'value="{theirs.pk}"' not in html


def test_my_appointments_requires_login(client, db):
    response = client.get("/me/appointments/")

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/me/appointments/"


def test_my_appointments_listing_is_recorded(patient_client, clinic):
    first = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=clinic.patient
    )
    second = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot + timedelta(days=4),
    )

    patient_client.get("/me/appointments/")

    events = AccessEvent.objects.filter(action=Action.LIST).exclude(appointment_id=None)
    assert {event.appointment_id for event in events} == {first.pk, second.pk}
    assert {(e.actor_user_id, e.channel) for e in events} == {(clinic.patient.user.pk, "web")}


def test_cancelling_my_appointment(patient_client, clinic):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot,  # 25 hours ahead, the notice is 24
    )

    response = patient_client.post("/me/appointments/", {"cancel": appointment.pk}, follow=True)

    appointment.refresh_from_db()
    assert response.redirect_chain == [("/me/appointments/", 302)]
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancelled_by == Appointment.CancelledBy.PATIENT
    assert AccessEvent.objects.filter(appointment_id=appointment.pk, action=Action.CANCEL).exists()
    assert "Your appointment is cancelled." in response.content.decode()


def test_cancelling_another_patients_appointment_answers_404_and_is_recorded(
    patient_client, clinic
):
    theirs = AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason)

    response = patient_client.post("/me/appointments/", {"cancel": theirs.pk})

    theirs.refresh_from_db()
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert theirs.status == Appointment.Status.BOOKED
    denied = AccessEvent.objects.get(action=Action.DENIED)
    assert (denied.appointment_id, denied.actor_user_id) == (theirs.pk, clinic.patient.user.pk)


@pytest.mark.parametrize("value", ["", "abc", "1.5"])
def test_cancelling_a_garbage_id_answers_404(patient_client, clinic, value):
    assert patient_client.post("/me/appointments/", {"cancel": value}).status_code == 404


@pytest.mark.parametrize("value", [0, -1, 2**63, 10**30])
def test_cancelling_an_unknown_id_answers_404_and_is_recorded(patient_client, clinic, value):
    response = patient_client.post("/me/appointments/", {"cancel": value})

    assert response.status_code == 404
    assert AccessEvent.objects.filter(
        action=Action.DENIED, actor_user_id=clinic.patient.user.pk
    ).exists()


def test_cancelling_too_late_shows_a_message(patient_client, clinic):
    soon = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=datetime.combine(clinic.slot.date() - timedelta(days=1), time(10), tzinfo=clinic.tz),
    )

    response = patient_client.post("/me/appointments/", {"cancel": soon.pk}, follow=True)

    soon.refresh_from_db()
    assert response.status_code == 200
    assert soon.status == Appointment.Status.BOOKED
    assert "less than 24 hours" in response.content.decode()


def test_cancelling_twice_shows_a_message(patient_client, clinic):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot,
        status=Appointment.Status.CANCELLED,
    )

    response = patient_client.post("/me/appointments/", {"cancel": appointment.pk}, follow=True)

    assert response.status_code == 200
    assert "already cancelled" in response.content.decode()


def test_my_appointments_query_budget(patient_client, clinic, django_assert_max_num_queries):
    relative = RelativeFactory(managed_by=clinic.patient)
    for day in range(8):
        AppointmentFactory(
            practitioner=PractitionerFactory(),
            patient=clinic.patient,
            relative=relative if day % 2 else None,
            start=clinic.slot + timedelta(days=day),
        )

    for months in (1, 6):
        AppointmentFactory(
            practitioner=PractitionerFactory(),
            patient=clinic.patient,
            start=clinic.slot - timedelta(days=30 * months),
        )

    # Session, user, then for upcoming and past: the appointments with their relations and one
    # bulk insert of access events.
    with django_assert_max_num_queries(6):
        response = patient_client.get("/me/appointments/")

    assert len(response.context["appointments"]) == 8
    assert len(response.context["past"]) == 2


def test_my_appointments_shows_upcoming_and_the_last_twelve_months_apart(patient_client, clinic):
    upcoming = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot,
    )
    recent, older = (
        AppointmentFactory(
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            patient=clinic.patient,
            start=clinic.slot - timedelta(days=days),
            status=Appointment.Status.DONE,
        )
        for days in (10, 200)
    )
    AppointmentFactory(  # more than a year ago: not shown
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot - timedelta(days=400),
    )

    response = patient_client.get("/me/appointments/")

    assert response.context["appointments"] == [upcoming]
    assert response.context["past"] == [recent, older]  # most recent first
    html = response.content.decode()
    assert html.index('id="upcoming-heading"') < html.index(f"appointment-{upcoming.pk}")
    assert html.index('id="past-heading"') < html.index(f"appointment-{recent.pk}")
    assert f"/me/appointments/{upcoming.pk}/reschedule/" in html
    assert f"/me/appointments/{recent.pk}/reschedule/" not in html


def test_my_appointments_explains_when_it_is_too_late_to_cancel(patient_client, clinic):
    soon = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=datetime.combine(clinic.slot.date() - timedelta(days=1), time(10), tzinfo=clinic.tz),
    )

    html = patient_client.get("/me/appointments/").content.decode()

    assert "Less than 24 hours before the appointment" in html
    assert f'name="cancel" value="{soon.pk}"' not in html


def test_times_name_the_practice_time_zone_when_it_is_not_the_sites(patient_client, clinic):
    practice = clinic.practitioner.practice
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot,
    )
    paris = patient_client.get("/me/appointments/").content.decode()
    practice.timezone = "America/Martinique"
    practice.save()

    martinique = patient_client.get("/me/appointments/").content.decode()
    booked = patient_client.get(f"/me/appointments/{appointment.pk}/booked/").content.decode()

    assert "Europe/Paris" not in paris
    assert "(America/Martinique)" in martinique
    assert '<time datetime="2026-06-02T03:00:00-04:00">' in martinique
    assert "America/Martinique" in booked


def test_booked_page_of_another_patients_appointment_answers_404(patient_client, clinic):
    theirs = AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason)

    assert patient_client.get(f"/me/appointments/{theirs.pk}/booked/").status_code == 404


def test_calendar_export_is_an_ics_file_in_utc(patient_client, clinic):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot,
    )

    response = patient_client.get(f"/me/appointments/{appointment.pk}/calendar.ics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = response.content.decode()
    assert "BEGIN:VCALENDAR" in body
    assert "DTSTART:20260602T070000Z" in body
    assert AccessEvent.objects.filter(appointment_id=appointment.pk, action=Action.EXPORT).exists()


def reschedule_url(appointment) -> str:
    return f"/me/appointments/{appointment.pk}/reschedule/"


@pytest.fixture
def my_appointment(clinic):
    return AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot + timedelta(days=2),
    )


def test_reschedule_page_shows_fourteen_days_of_the_same_reason(patient_client, my_appointment):
    response = patient_client.get(reschedule_url(my_appointment))

    assert response.status_code == 200
    weeks = response.context["weeks"]
    assert [len(week) for week in weeks] == [7, 7]
    html = response.content.decode()
    assert 'name="start" value="2026-06-02T07:00:00Z"' in html
    assert 'href="?start=2026-06-08"' in html


def test_reschedule_moves_the_appointment(patient_client, clinic, my_appointment):
    response = patient_client.post(
        reschedule_url(my_appointment), {"start": TOMORROW_0900_UTC}, follow=True
    )

    my_appointment.refresh_from_db()
    new = Appointment.objects.get(rescheduled_from=my_appointment)
    assert response.redirect_chain == [(f"/me/appointments/{new.pk}/booked/", 302)]
    assert my_appointment.status == Appointment.Status.CANCELLED
    assert new.start == clinic.slot
    assert "Your appointment has been moved." in response.content.decode()


def test_reschedule_to_a_slot_taken_meanwhile_keeps_the_appointment(
    patient_client, clinic, my_appointment
):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = patient_client.post(reschedule_url(my_appointment), {"start": TOMORROW_0900_UTC})

    my_appointment.refresh_from_db()
    assert response.status_code == 409
    assert "This slot has just been taken" in response.content.decode()
    assert my_appointment.status == Appointment.Status.BOOKED
    assert not Appointment.objects.filter(rescheduled_from=my_appointment).exists()


@pytest.mark.parametrize("start", ["", "garbage", "2026-06-02T09:00:00", "2026-06-02T07:10:00Z"])
def test_reschedule_to_a_time_not_offered_is_a_message(patient_client, my_appointment, start):
    response = patient_client.post(reschedule_url(my_appointment), {"start": start})

    my_appointment.refresh_from_db()
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert my_appointment.status == Appointment.Status.BOOKED


def test_reschedule_too_late_is_explained(patient_client, clinic):
    soon = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=datetime.combine(clinic.slot.date() - timedelta(days=1), time(10), tzinfo=clinic.tz),
    )

    page = patient_client.get(reschedule_url(soon))
    response = patient_client.post(reschedule_url(soon), {"start": TOMORROW_0900_UTC}, follow=True)

    assert "can no longer be moved online" in page.content.decode()
    assert "less than 24 hours" in response.content.decode()
    soon.refresh_from_db()
    assert soon.status == Appointment.Status.BOOKED


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/me/appointments/{pk}/booked/"),
        ("get", "/me/appointments/{pk}/reschedule/"),
        ("post", "/me/appointments/{pk}/reschedule/"),
        ("get", "/me/appointments/{pk}/calendar.ics"),
        ("post", "/me/appointments/{pk}/waitlist/"),
    ],
)
def test_another_patients_appointment_answers_404_on_every_url(
    patient_client, clinic, method, path
):
    theirs = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )

    response = getattr(patient_client, method)(
        path.format(pk=theirs.pk), {"start": "2026-06-02T08:00:00Z"} if method == "post" else {}
    )

    theirs.refresh_from_db()
    assert response.status_code == 404
    assert theirs.status == Appointment.Status.BOOKED
    assert AccessEvent.objects.filter(action=Action.DENIED, appointment_id=theirs.pk).exists()


def test_my_space_pages_require_login(client, clinic):
    appointment = AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason)
    for path in ("booked/", "reschedule/", "calendar.ics"):
        response = client.get(f"/me/appointments/{appointment.pk}/{path}")
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")


def test_reschedule_page_query_budget(
    patient_client, my_appointment, django_assert_max_num_queries
):
    # Session, user, the appointment, its view event; hours (+ their reasons), absences and
    # appointments for the grid.
    with django_assert_max_num_queries(8):
        assert patient_client.get(reschedule_url(my_appointment)).status_code == 200


# --- New patients ---------------------------------------------------------------------------


def test_new_patient_question_filters_the_reasons(client, clinic):
    first = VisitReasonFactory(
        practitioner=clinic.practitioner, label="Premier rendez-vous", patient_kind="new"
    )
    follow_up = VisitReasonFactory(
        practitioner=clinic.practitioner, label="Suivi", patient_kind="existing"
    )
    url = clinic.practitioner.get_absolute_url()

    def reasons(params):
        return [grid["reason"] for grid in client.get(url, params).context["grids"]]

    assert reasons({}) == [clinic.reason, first, follow_up]
    assert reasons({"new": "1"}) == [clinic.reason, first]
    assert reasons({"new": "0"}) == [clinic.reason, follow_up]
    assert reasons({"new": "maybe"}) == [clinic.reason, first, follow_up]
    html = client.get(url, {"new": "1"}).content.decode()
    assert "<legend>Are you a new patient of this practitioner?</legend>" in html
    assert 'name="new" value="1" checked' in html
    assert 'href="?new=1&amp;start=2026-06-08"' in html


# --- Accounts -------------------------------------------------------------------------------


def test_login_page_has_labelled_fields(client, db):
    html = client.get("/accounts/login/").content.decode()

    assert '<label for="id_username"' in html
    assert '<label for="id_password"' in html


@pytest.mark.parametrize("transform", [str, str.upper, str.title])
def test_login_with_email_in_any_case(client, clinic, transform):
    email = clinic.patient.user.email

    response = client.post(
        "/accounts/login/", {"username": f" {transform(email)} ", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response.url == "/"
    assert client.session["_auth_user_id"] == str(clinic.patient.user.pk)


def test_login_with_a_wrong_password_is_refused(client, clinic):
    response = client.post(
        "/accounts/login/", {"username": clinic.patient.user.email, "password": "nope"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session


def test_login_returns_to_the_booking_page(client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    response = client.post(
        "/accounts/login/",
        {"username": clinic.patient.user.email, "password": PASSWORD, "next": url},
    )

    assert response.url == url


def test_logout_by_post(patient_client, clinic):
    assert patient_client.get("/accounts/logout/").status_code == 405

    response = patient_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert "_auth_user_id" not in patient_client.session
