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
    assert '<html lang="fr">' in client.get("/").content.decode()
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


def test_practitioner_page_shows_seven_local_days_of_free_slots(client, clinic):
    response = client.get(clinic.practitioner.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    columns = response.context["grids"][0]["columns"]
    assert [column["day"].isoformat() for column in columns] == [
        f"2026-06-0{day}" for day in range(1, 8)
    ]
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

    assert response_days(response) == [f"2026-06-{day:02d}" for day in range(3, 10)]
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
    html = client.get(clinic.practitioner.get_absolute_url()).content.decode()

    # The day's and month's names follow the active language (French by default).
    assert re.search(r'aria-label="Consultation, mardi 2 juin [^"]*09:00"', html)
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
    assert '<label for="id_relative"' in html
    assert not Appointment.objects.exists()


def test_booking_books_and_lists_the_appointment(patient_client, clinic):
    response = patient_client.post(
        book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC), {}, follow=True
    )

    appointment = Appointment.objects.get()
    assert response.redirect_chain == [("/me/appointments/", 302)]
    assert (appointment.patient, appointment.start, appointment.relative) == (
        clinic.patient,
        clinic.slot,
        None,
    )
    assert appointment.channel == Appointment.Channel.WEB
    assert f'value="{appointment.pk}"' in response.content.decode()


def test_booking_for_a_relative(patient_client, clinic):
    relative = RelativeFactory(managed_by=clinic.patient, first_name="Léa")
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    form_page = patient_client.get(url)
    response = patient_client.post(url, {"relative": relative.pk}, follow=True)

    assert "Léa" in form_page.content.decode()
    assert Appointment.objects.get().relative == relative
    assert "Léa" in response.content.decode()


def test_booking_for_another_patients_relative_is_a_form_error(patient_client, clinic):
    stranger = RelativeFactory(managed_by=PatientFactory(), first_name="Inconnu")
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)

    form_page = patient_client.get(url)
    response = patient_client.post(url, {"relative": stranger.pk})

    assert "Inconnu" not in form_page.content.decode()
    assert response.status_code == 200
    assert response.context["form"].errors["relative"]
    assert not Appointment.objects.exists()


def test_slot_taken_meanwhile_goes_back_to_the_grid_with_a_message(patient_client, clinic):
    url = book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC)
    assert patient_client.get(url).status_code == 200
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = patient_client.post(url, {}, follow=True)

    assert response.redirect_chain == [(clinic.practitioner.get_absolute_url(), 302)]
    assert response.status_code == 200
    assert "This slot has just been taken" in response.content.decode()
    assert Appointment.objects.filter(patient=clinic.patient).count() == 0


def test_confirmation_page_for_a_slot_no_longer_free_goes_back_to_the_grid(patient_client, clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = patient_client.get(
        book_url(clinic.practitioner, clinic.reason, TOMORROW_0900_UTC), follow=True
    )

    assert response.redirect_chain == [(clinic.practitioner.get_absolute_url(), 302)]
    assert "This time is no longer available" in response.content.decode()


def test_booking_a_time_not_offered_is_refused_with_a_message(patient_client, clinic):
    # 09:10 is not on the 30-minute grid.
    response = patient_client.post(
        book_url(clinic.practitioner, clinic.reason, "2026-06-02T07:10:00Z"), {}, follow=True
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


def test_booking_by_an_account_without_patient_profile_is_refused_with_a_message(client, clinic):
    client.force_login(clinic.practitioner.user)

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

    events = AccessEvent.objects.filter(action=Action.LIST)
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

    # Session, user, the appointments with their relations, one bulk insert of access events.
    with django_assert_max_num_queries(4):
        response = patient_client.get("/me/appointments/")

    assert len(response.context["appointments"]) == 8


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
