"""REST API v1 (DESIGN contracts): status codes, error shapes, ownership, audit, query budgets.

The `clinic` practice is open every day 08:00-18:00 in Paris with a 30-minute reason and a
60-minute minimum notice; it is Monday 1 June 2026, 08:00 there."""

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AccessEvent, Action, Channel
from booking.models import Appointment
from booking.next_slots import refresh_next_slots
from practitioners.models import Practitioner, StaffAccess, VisitReason
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PracticeFactory,
    PractitionerFactory,
    RelativeFactory,
    SpecialtyFactory,
    UserFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    secretary_of,
)
from tests.otp import otp_login

API = "/api/v1"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    if user.requires_two_factor:  # staff sessions need their second factor (tests/otp.py)
        otp_login(client, user)
    else:
        client.force_login(user)
    return client


@pytest.fixture
def patient_client(clinic) -> APIClient:
    return client_for(clinic.patient.user)


@pytest.fixture
def practitioner_client(clinic) -> APIClient:
    return client_for(clinic.practitioner.user)


def booking_body(clinic: SimpleNamespace, **overrides: Any) -> dict[str, Any]:
    body = {
        "practitioner": clinic.practitioner.pk,
        "reason": clinic.reason.pk,
        "start": clinic.slot.isoformat(),
    }
    body.update(overrides)
    return body


def booked_at(clinic: SimpleNamespace, start: datetime, **fields: Any) -> Appointment:
    fields.setdefault("patient", clinic.patient)
    return AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=start, **fields
    )


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def denial_events() -> list[tuple[Any, ...]]:
    return list(
        AccessEvent.objects.filter(action=Action.DENIED).values_list(
            "appointment_id", "actor_user_id", "channel", "detail"
        )
    )


# --- Specialties and practitioners (public) ---------------------------------------------------


def test_specialties_are_listed_by_name(db, api_client, django_assert_max_num_queries):
    SpecialtyFactory(name="Pédiatrie", slug="pediatrie")
    SpecialtyFactory(name="Cardiologie", slug="cardiologie")

    with django_assert_max_num_queries(1):
        response = api_client.get(f"{API}/specialties/")

    assert response.status_code == 200
    assert [s["slug"] for s in response.json()] == ["cardiologie", "pediatrie"]


@pytest.fixture
def directory(clinic):
    """Three more practitioners in two cities and two specialties, beside the clinic's."""
    cardio = SpecialtyFactory(name="Cardiologie", slug="cardiologie")
    derm = SpecialtyFactory(name="Dermatologie", slug="dermatologie")
    paris = PracticeFactory(city="Paris")
    marseille = PracticeFactory(city="Marseille")
    return SimpleNamespace(
        dupont=PractitionerFactory(last_name="Dupont", specialty=cardio, practice=paris),
        durand=PractitionerFactory(last_name="Durand", specialty=cardio, practice=marseille),
        martin=PractitionerFactory(last_name="Martin", specialty=derm, practice=paris),
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("specialty=cardiologie", {"dupont", "durand"}),
        ("city=par", {"dupont", "martin"}),
        ("city=PARIS&specialty=cardiologie", {"dupont"}),
        ("q=dur", {"durand"}),
        ("q=nobody", set()),
    ],
)
def test_practitioners_are_filtered_by_specialty_city_and_name(
    directory, api_client, query, expected
):
    response = api_client.get(f"{API}/practitioners/?{query}")

    assert response.status_code == 200
    ids = {getattr(directory, name).pk for name in expected}
    assert {p["id"] for p in response.json()["results"]} == ids
    assert response.json()["count"] == len(ids)


def test_practitioners_list_gives_each_its_next_available_slot(clinic, directory, api_client):
    closed = PractitionerFactory(online_booking_enabled=False)
    VisitReasonFactory(practitioner=closed)
    WeeklyHoursFactory(practitioner=closed, weekday=0)

    results = {p["id"]: p for p in api_client.get(f"{API}/practitioners/").json()["results"]}

    # Now 08:00 plus 60 minutes of notice: today 09:00 in Paris.
    assert instant(results[clinic.practitioner.pk]["next_available"]) == clinic.slot - timedelta(
        days=1
    )
    assert results[directory.dupont.pk]["next_available"] is None  # no hours, no reasons
    assert results[closed.pk]["next_available"] is None


def test_practitioners_list_next_available_skips_taken_slots(clinic, api_client):
    booked_at(clinic, clinic.slot - timedelta(days=1))

    result = api_client.get(f"{API}/practitioners/").json()["results"][0]

    assert instant(result["next_available"]) == clinic.slot - timedelta(days=1, minutes=-30)


def test_practitioners_list_is_paginated(directory, api_client):
    first = api_client.get(f"{API}/practitioners/?limit=3").json()
    second = api_client.get(first["next"]).json()

    assert first["count"] == 4
    assert first["previous"] is None
    assert len(first["results"]) == 3
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert second["previous"] is not None
    ids = [p["id"] for p in first["results"] + second["results"]]
    assert len(set(ids)) == 4


@pytest.mark.parametrize("extra_practitioners", [0, 8])
def test_practitioners_list_query_count_does_not_grow_with_the_page(
    clinic, api_client, django_assert_max_num_queries, extra_practitioners
):
    for _ in range(extra_practitioners):
        practitioner = PractitionerFactory()
        VisitReasonFactory(practitioner=practitioner)
        WeeklyHoursFactory(practitioner=practitioner, weekday=0)
    # The hooks fill the next-slots table after commit, which a test's transaction never
    # reaches; tests/booking/test_next_slots.py budgets the refresh itself.
    refresh_next_slots(practitioner_ids=Practitioner.objects.values_list("pk", flat=True))

    with django_assert_max_num_queries(7):
        response = api_client.get(f"{API}/practitioners/")

    assert len(response.json()["results"]) == 1 + extra_practitioners


def test_practitioner_detail_lists_its_online_reasons(
    clinic, api_client, django_assert_max_num_queries
):
    VisitReasonFactory(practitioner=clinic.practitioner, online_bookable=False, label="Phone only")
    VisitReasonFactory(practitioner=clinic.practitioner, active=False, label="Retired")

    with django_assert_max_num_queries(2):
        response = api_client.get(f"{API}/practitioners/{clinic.practitioner.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == str(clinic.practitioner)
    assert body["practice"]["timezone"] == "Europe/Paris"
    assert body["reasons"] == [
        {"id": clinic.reason.pk, "label": "Consultation", "duration": 30, "patient_kind": "all"}
    ]


def test_unknown_practitioner_is_404(db, api_client):
    response = api_client.get(f"{API}/practitioners/987654/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- Slots ----------------------------------------------------------------------------------


def slots_url(clinic: SimpleNamespace, query: str = "") -> str:
    return f"{API}/practitioners/{clinic.practitioner.pk}/slots/?{query}"


def test_slots_of_a_day_are_the_free_aligned_starts(
    clinic, api_client, django_assert_max_num_queries
):
    booked_at(clinic, clinic.slot)
    tomorrow = clinic.slot.date().isoformat()

    with django_assert_max_num_queries(6):
        response = api_client.get(
            slots_url(clinic, f"reason={clinic.reason.pk}&start={tomorrow}&days=1")
        )

    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "Europe/Paris"
    slots = [instant(s) for s in body["slots"]]
    assert len(slots) == 20 - 1  # 08:00-18:00 every 30 minutes, minus the booked 09:00
    assert clinic.slot not in slots
    assert slots[0] == clinic.slot.replace(hour=8)


def test_slots_default_to_seven_days_from_today_after_the_notice(clinic, api_client):
    slots = [
        instant(s)
        for s in api_client.get(slots_url(clinic, f"reason={clinic.reason.pk}")).json()["slots"]
    ]

    assert slots[0] == clinic.slot - timedelta(days=1)  # today 09:00: now 08:00 + 60 minutes
    assert len({s.astimezone(clinic.tz).date() for s in slots}) == 7


def test_slots_of_a_practitioner_not_booking_online_are_empty(clinic, api_client):
    clinic.practitioner.online_booking_enabled = False
    clinic.practitioner.save()

    assert api_client.get(slots_url(clinic, f"reason={clinic.reason.pk}")).json()["slots"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "reason"),
        ("reason=abc", "reason"),
        ("reason={other_reason}", "reason"),
        ("reason={offline_reason}", "reason"),
        ("reason={reason}&days=32", "days"),
        ("reason={reason}&days=0", "days"),
        ("reason={reason}&start=tomorrow", "start"),
        ("reason={reason}&start=2026-02-30", "start"),
        ("reason={reason}&start=9999-12-31", "start"),
        ("reason={reason}&start=0001-01-01", "start"),
    ],
)
def test_slots_bad_parameters_answer_400_with_a_field_message(clinic, api_client, query, field):
    query = query.format(
        reason=clinic.reason.pk,
        other_reason=VisitReasonFactory().pk,
        offline_reason=VisitReasonFactory(
            practitioner=clinic.practitioner, online_bookable=False
        ).pk,
    )

    response = api_client.get(slots_url(clinic, query))

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert response.json()[field][0]


def test_slots_of_an_unknown_practitioner_are_404(clinic, api_client):
    response = api_client.get(f"{API}/practitioners/987654/slots/?reason={clinic.reason.pk}")

    assert response.status_code == 404


# --- Appointments: list and detail ----------------------------------------------------------


def test_appointments_list_shows_only_the_patients_own(
    clinic, patient_client, django_assert_max_num_queries
):
    mine = booked_at(clinic, clinic.slot)
    booked_at(clinic, clinic.slot + timedelta(hours=1), patient=PatientFactory())
    child = RelativeFactory(managed_by=clinic.patient)
    childs = booked_at(clinic, clinic.slot + timedelta(hours=2), relative=child)

    with django_assert_max_num_queries(4):
        response = patient_client.get(f"{API}/appointments/")

    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body["results"]] == [mine.pk, childs.pk]
    assert body["results"][1]["relative"] == {"id": child.pk, "name": child.full_name}
    assert body["results"][0]["patient"] == {
        "id": clinic.patient.pk,
        "name": clinic.patient.full_name,
    }
    assert body["count"] == 2
    assert set(AccessEvent.objects.values_list("action", "appointment_id", "channel")) == {
        (Action.LIST, mine.pk, Channel.API),
        (Action.LIST, childs.pk, Channel.API),
    }


def test_appointments_list_query_count_does_not_grow_with_the_page(
    clinic, practitioner_client, django_assert_max_num_queries
):
    for hour in range(10):
        booked_at(
            clinic, clinic.slot + timedelta(hours=hour), patient=PatientFactory(), relative=None
        )

    with django_assert_max_num_queries(6):
        response = practitioner_client.get(f"{API}/appointments/?limit=5")

    assert len(response.json()["results"]) == 5
    assert response.json()["count"] == 10
    assert AccessEvent.objects.count() == 5


def test_secretary_lists_the_agenda_granted_to_them(clinic, django_assert_max_num_queries):
    appointment = booked_at(clinic, clinic.slot)
    AppointmentFactory()  # another practitioner's
    client = client_for(secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW))

    with django_assert_max_num_queries(5):  # 4, plus the session's OTP device
        response = client.get(f"{API}/appointments/")

    assert [a["id"] for a in response.json()["results"]] == [appointment.pk]
    assert AccessEvent.objects.get().on_behalf_of_id == clinic.practitioner.pk


def test_appointment_detail_is_shown_to_its_patient_and_recorded(
    clinic, patient_client, django_assert_max_num_queries
):
    appointment = booked_at(clinic, clinic.slot)

    with django_assert_max_num_queries(4):
        response = patient_client.get(
            f"{API}/appointments/{appointment.pk}/", HTTP_X_REQUEST_ID="req-detail-0001"
        )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == appointment.pk
    assert instant(body["start"]) == clinic.slot
    assert body["status"] == "booked"
    assert body["timezone"] == "Europe/Paris"
    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.request_id, event.ip) == (
        Action.VIEW,
        appointment.pk,
        "req-detail-0001",
        "127.0.0.1",
    )


# --- Ownership: another's appointment is 404, and the refusal is recorded -------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "cancel/", {}),
        ("post", "reschedule/", {"start": "2026-06-03T10:00:00+02:00"}),
        ("post", "status/", {"status": "arrived"}),
    ],
)
@pytest.mark.parametrize("intruder", ["patient", "practitioner", "secretary", "admin"])
def test_another_users_appointment_is_404_and_the_denial_is_recorded(
    clinic, method, suffix, body, intruder, django_assert_max_num_queries
):
    appointment = booked_at(clinic, clinic.slot)
    other = PractitionerFactory()
    user = {
        "patient": lambda: PatientFactory().user,
        "practitioner": lambda: other.user,
        "secretary": lambda: secretary_of(other),
        "admin": lambda: UserFactory(role=Role.ADMIN),
    }[intruder]()
    client = client_for(user)

    with django_assert_max_num_queries(8):
        response = getattr(client, method)(
            f"{API}/appointments/{appointment.pk}/{suffix}", body, format="json"
        )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert denial_events() == [(appointment.pk, user.pk, Channel.API, "not_found")]
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_a_missing_appointment_is_the_same_404(clinic, patient_client):
    response = patient_client.get(f"{API}/appointments/987654/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_an_id_beyond_the_database_range_is_404_and_still_recorded(clinic, patient_client):
    response = patient_client.get(f"{API}/appointments/{10**30}/")

    assert response.status_code == 404
    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.actor_user_id) == (
        Action.DENIED,
        None,
        clinic.patient.user.pk,
    )
    assert event.detail == "not_found (id out of range)"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "appointments/"),
        ("post", "appointments/"),
        ("get", "appointments/1/"),
        ("post", "appointments/1/cancel/"),
        ("post", "appointments/1/reschedule/"),
        ("post", "appointments/1/status/"),
    ],
)
def test_appointments_need_an_authenticated_user(db, api_client, method, url):
    response = getattr(api_client, method)(f"{API}/{url}", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"


# --- Booking --------------------------------------------------------------------------------


def test_patient_books_through_the_api(clinic, patient_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        response = patient_client.post(
            f"{API}/appointments/",
            booking_body(clinic),
            format="json",
            HTTP_X_REQUEST_ID="req-booking-001",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    appointment = Appointment.objects.get()
    assert body["id"] == appointment.pk
    assert instant(body["start"]) == clinic.slot
    assert instant(body["end"]) == clinic.slot + timedelta(minutes=30)
    assert body["channel"] == "api"
    assert body["patient"]["id"] == clinic.patient.pk
    assert appointment.channel == Appointment.Channel.API
    event = AccessEvent.objects.get()
    assert (event.action, event.channel, event.request_id, event.appointment_id) == (
        Action.CREATE,
        Channel.API,
        "req-booking-001",
        appointment.pk,
    )


def test_patient_books_for_their_relative(clinic, patient_client):
    child = RelativeFactory(managed_by=clinic.patient)

    response = patient_client.post(
        f"{API}/appointments/", booking_body(clinic, relative=child.pk), format="json"
    )

    assert response.status_code == 201
    assert response.json()["relative"]["id"] == child.pk


def test_booking_a_taken_slot_is_409_slot_taken(clinic, patient_client):
    booked_at(clinic, clinic.slot, patient=PatientFactory())

    response = patient_client.post(f"{API}/appointments/", booking_body(clinic), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "slot_taken"
    assert Appointment.objects.count() == 1


def test_second_booking_of_same_slot_gets_409(clinic, patient_client):
    first = patient_client.post(f"{API}/appointments/", booking_body(clinic), format="json")
    second = client_for(PatientFactory().user).post(
        f"{API}/appointments/", booking_body(clinic), format="json"
    )

    assert (first.status_code, second.status_code) == (201, 409)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"start": "tomorrow at nine"}, "start"),
        ({"start": "2026-02-30T09:00:00+01:00"}, "start"),
        ({"start": "2026-06-02T09:10:00+02:00"}, "start"),  # misaligned on the 30-minute grid
        ({"start": "2026-06-02T19:00:00+02:00"}, "start"),  # after closing
        ({"start": "2026-05-31T09:00:00+02:00"}, "start"),  # in the past
        ({"practitioner": 987654}, "practitioner"),
        ({"practitioner": "dr house"}, "practitioner"),
        ({"reason": "{other_reason}"}, "reason"),
        ({"reason": 987654}, "reason"),
        ({"relative": "{others_relative}"}, "relative"),
        ({"relative": 987654}, "relative"),
        ({"patient": "{other_patient}"}, "patient"),
    ],
)
def test_bad_booking_input_answers_400_with_a_field_message(
    clinic, patient_client, overrides, field
):
    other_patient = PatientFactory()
    AppointmentFactory(
        practitioner=clinic.practitioner,
        patient=other_patient,
        start=clinic.slot + timedelta(days=5),
    )
    values = {
        "other_reason": VisitReasonFactory().pk,
        "others_relative": RelativeFactory().pk,
        "other_patient": other_patient.pk,
    }
    body = booking_body(
        clinic,
        **{
            k: (values[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v)
            for k, v in overrides.items()
        },
    )

    response = patient_client.post(f"{API}/appointments/", body, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()[field][0]
    assert Appointment.objects.filter(patient=clinic.patient).count() == 0


def test_missing_booking_fields_each_get_a_message(clinic, patient_client):
    response = patient_client.post(f"{API}/appointments/", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"practitioner", "reason", "start"}


def test_a_start_not_offered_says_so_with_a_code(clinic, patient_client):
    response = patient_client.post(
        f"{API}/appointments/",
        booking_body(clinic, start="2026-06-02T09:10:00+02:00"),
        format="json",
    )

    assert response.json()["code"] == "slot_not_offered"
    assert response.json()["start"] == [response.json()["detail"]]


def test_practitioner_books_for_a_patient_they_know(clinic, practitioner_client):
    booked_at(clinic, clinic.slot + timedelta(days=5))

    response = practitioner_client.post(
        f"{API}/appointments/", booking_body(clinic, patient=clinic.patient.pk), format="json"
    )

    assert response.status_code == 201
    assert response.json()["patient"]["id"] == clinic.patient.pk


def test_practitioner_may_not_book_for_a_patient_they_do_not_know(clinic, practitioner_client):
    stranger = PatientFactory()

    response = practitioner_client.post(
        f"{API}/appointments/", booking_body(clinic, patient=stranger.pk), format="json"
    )

    assert response.status_code == 400
    assert "patient" in response.json()


def test_secretary_with_view_access_is_403_when_booking(clinic):
    booked_at(clinic, clinic.slot + timedelta(days=5))
    secretary = secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW)

    response = client_for(secretary).post(
        f"{API}/appointments/", booking_body(clinic, patient=clinic.patient.pk), format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed"
    assert denial_events() == [(None, secretary.pk, Channel.API, "not_allowed")]


def test_account_without_patient_profile_gets_400(clinic):
    response = client_for(UserFactory(role=Role.ADMIN)).post(
        f"{API}/appointments/", booking_body(clinic), format="json"
    )

    assert response.status_code == 400
    assert "patient" in response.json()


# --- Cancel, reschedule, status -------------------------------------------------------------


def test_patient_cancels_through_the_api(clinic, patient_client, django_assert_max_num_queries):
    appointment = booked_at(clinic, clinic.slot)

    with django_assert_max_num_queries(10):
        response = patient_client.post(
            f"{API}/appointments/{appointment.pk}/cancel/", {"reason": "better"}, format="json"
        )

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_by"] == "patient"
    assert list(AccessEvent.objects.values_list("action", flat=True)) == [Action.CANCEL]


def test_cancelling_too_late_is_400_too_late(clinic, patient_client):
    appointment = booked_at(clinic, clinic.slot - timedelta(hours=20))

    response = patient_client.post(f"{API}/appointments/{appointment.pk}/cancel/", format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "too_late"
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_cancelling_twice_is_400_invalid_transition(clinic, patient_client):
    appointment = booked_at(clinic, clinic.slot, status=Appointment.Status.CANCELLED)

    response = patient_client.post(f"{API}/appointments/{appointment.pk}/cancel/", format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_transition"


def test_patient_reschedules_through_the_api(clinic, patient_client, django_assert_max_num_queries):
    old = booked_at(clinic, clinic.slot)
    new_start = clinic.slot + timedelta(hours=3)

    with django_assert_max_num_queries(20):
        response = patient_client.post(
            f"{API}/appointments/{old.pk}/reschedule/",
            {"start": new_start.isoformat()},
            format="json",
        )

    assert response.status_code == 200
    assert instant(response.json()["start"]) == new_start
    old.refresh_from_db()
    assert old.status == Appointment.Status.CANCELLED
    assert old.rescheduled_to.pk == response.json()["id"]


def test_rescheduling_to_a_taken_slot_is_409_and_keeps_the_appointment(clinic, patient_client):
    old = booked_at(clinic, clinic.slot)
    taken = booked_at(clinic, clinic.slot + timedelta(hours=3), patient=PatientFactory())

    response = patient_client.post(
        f"{API}/appointments/{old.pk}/reschedule/",
        {"start": taken.start.isoformat()},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "slot_taken"
    old.refresh_from_db()
    assert old.status == Appointment.Status.BOOKED
    assert Appointment.objects.count() == 2


@pytest.mark.parametrize("start", ["", "soon", "2026-06-02T09:10:00+02:00", "9999-12-31T23:00:00Z"])
def test_rescheduling_to_a_bad_start_is_400(clinic, patient_client, start):
    old = booked_at(clinic, clinic.slot)

    response = patient_client.post(
        f"{API}/appointments/{old.pk}/reschedule/", {"start": start}, format="json"
    )

    assert response.status_code == 400
    assert "start" in response.json()


def test_practitioner_marks_arrival(clinic, practitioner_client, django_assert_max_num_queries):
    appointment = booked_at(clinic, clinic.slot - timedelta(days=1, hours=2))  # began at 07:00

    with django_assert_max_num_queries(9):  # 8, plus the session's OTP device
        response = practitioner_client.post(
            f"{API}/appointments/{appointment.pk}/status/", {"status": "arrived"}, format="json"
        )

    assert response.status_code == 200
    assert response.json()["status"] == "arrived"
    assert list(AccessEvent.objects.values_list("action", flat=True)) == [Action.STATUS]


def test_patient_marking_the_status_of_their_own_appointment_is_403(clinic, patient_client):
    appointment = booked_at(clinic, clinic.slot)

    response = patient_client.post(
        f"{API}/appointments/{appointment.pk}/status/", {"status": "arrived"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed"
    assert denial_events() == [(appointment.pk, clinic.patient.user.pk, Channel.API, "not_allowed")]


@pytest.mark.parametrize("status", ["cancelled", "lost", "", None])
def test_status_outside_the_choices_is_400(clinic, practitioner_client, status):
    appointment = booked_at(clinic, clinic.slot)

    response = practitioner_client.post(
        f"{API}/appointments/{appointment.pk}/status/", {"status": status}, format="json"
    )

    assert response.status_code == 400
    assert "status" in response.json()


def test_invalid_transition_is_400(clinic, practitioner_client):
    appointment = booked_at(clinic, clinic.slot)  # tomorrow: no-show is too early

    response = practitioner_client.post(
        f"{API}/appointments/{appointment.pk}/status/", {"status": "no_show"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_transition"


# --- Garbage in, never a 500 ----------------------------------------------------------------

HUGE = 10**30
GARBAGE = [
    ("get", "practitioners/?limit=0", None),
    ("get", "practitioners/?limit=abc", None),
    ("get", f"practitioners/?offset={HUGE}", None),
    ("get", "practitioners/?offset=-1", None),
    ("get", "practitioners/?specialty=a%20b", None),
    ("get", f"practitioners/?city={'x' * 500}", None),
    ("get", "practitioners/?q=%25%27%3B--", None),
    ("get", f"practitioners/{HUGE}/", None),
    ("get", "practitioners/{practitioner}/slots/?reason=-1", None),
    ("get", f"practitioners/{{practitioner}}/slots/?reason={HUGE}", None),
    ("get", f"practitioners/{{practitioner}}/slots/?reason={{reason}}&days={HUGE}", None),
    ("get", "practitioners/{practitioner}/slots/?reason={reason}&days=-5", None),
    ("get", "practitioners/{practitioner}/slots/?reason={reason}&start=2026-13-01", None),
    ("get", "practitioners/{practitioner}/slots/?reason={reason}&start=99999-01-01", None),
    ("get", f"practitioners/{HUGE}/slots/?reason=1", None),
    ("get", "appointments/?start_from=yesterday", None),
    ("get", "appointments/?start_from=0001-01-01T00:00:00Z", None),
    ("get", "appointments/?start_before=9999-12-31T23:59:59Z", None),
    ("get", "appointments/?status=lost", None),
    ("get", "appointments/?practitioner=abc", None),
    ("get", f"appointments/?practitioner={HUGE}", None),
    ("get", f"appointments/?offset={HUGE}", None),
    ("get", "appointments/?limit=100000", None),
    ("get", f"appointments/{HUGE}/", None),
    ("post", "appointments/", []),
    ("post", "appointments/", "not json"),
    ("post", "appointments/", {"practitioner": None, "reason": None, "start": None}),
    ("post", "appointments/", {"practitioner": HUGE, "reason": HUGE, "start": "2026-06-02"}),
    ("post", "appointments/", {"practitioner": -1, "reason": -1, "start": 12345}),
    (
        "post",
        "appointments/",
        {"practitioner": "{practitioner}", "reason": "{reason}", "start": "9999-12-31T23:30:00Z"},
    ),
    (
        "post",
        "appointments/",
        {"practitioner": "{practitioner}", "reason": "{reason}", "start": "0001-01-01T00:00:00Z"},
    ),
    (
        "post",
        "appointments/",
        {
            "practitioner": "{practitioner}",
            "reason": "{reason}",
            "start": "2026-06-02T09:00:00+14:00",
        },
    ),
    (
        "post",
        "appointments/",
        {
            "practitioner": "{practitioner}",
            "reason": "{reason}",
            "start": "2026-06-02T09:00:00",
            "relative": HUGE,
        },
    ),
    (
        "post",
        "appointments/",
        {
            "practitioner": "{practitioner}",
            "reason": "{reason}",
            "start": {"nested": True},
            "patient": HUGE,
        },
    ),
    ("post", f"appointments/{HUGE}/cancel/", {"reason": "x" * 5000}),
    ("post", f"appointments/{HUGE}/reschedule/", {"start": "9999-12-31T23:30:00Z"}),
    ("post", f"appointments/{HUGE}/status/", {"status": ["arrived"]}),
]


@pytest.mark.parametrize(("method", "url", "body"), GARBAGE)
def test_garbage_input_never_answers_500(clinic, patient_client, method, url, body):
    fill = {"practitioner": clinic.practitioner.pk, "reason": clinic.reason.pk}
    url = url.format(**fill)
    if isinstance(body, dict):
        body = {
            k: (fill[v[1:-1]] if isinstance(v, str) and v[1:-1] in fill else v)
            for k, v in body.items()
        }
    if body == "not json":
        response = patient_client.post(f"{API}/{url}", "{not json", content_type="application/json")
    elif method == "post":
        response = patient_client.post(f"{API}/{url}", body, format="json")
    else:
        response = patient_client.get(f"{API}/{url}")

    assert response.status_code in {200, 400, 404, 409}, response.content
    assert response["Content-Type"].startswith("application/json")


# --- Schema and docs ------------------------------------------------------------------------


def test_openapi_schema_describes_the_api(db, api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in [
        "/api/v1/specialties/",
        "/api/v1/practitioners/",
        "/api/v1/practitioners/{practitioner_id}/",
        "/api/v1/practitioners/{practitioner_id}/slots/",
        "/api/v1/appointments/",
        "/api/v1/appointments/{appointment_id}/",
        "/api/v1/appointments/{appointment_id}/cancel/",
        "/api/v1/appointments/{appointment_id}/reschedule/",
        "/api/v1/appointments/{appointment_id}/status/",
    ]:
        assert path in schema["paths"], path


def test_api_docs_page_renders(db, client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_reason_kinds_are_published(clinic, api_client):
    VisitReasonFactory(
        practitioner=clinic.practitioner, patient_kind=VisitReason.PatientKind.NEW, label="First"
    )

    reasons = api_client.get(f"{API}/practitioners/{clinic.practitioner.pk}/").json()["reasons"]

    assert [r["patient_kind"] for r in reasons] == ["all", "new"]
