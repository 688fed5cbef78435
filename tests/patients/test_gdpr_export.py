"""/me/data/ and its JSON download: everything about me and my relatives, nothing of anyone else,
recorded as an export."""

import json
from datetime import datetime, timedelta

import pytest

from accounts.models import Role
from audit.actors import system_actor
from audit.models import AccessEvent, Action
from audit.services import record_access, record_denial
from booking.models import Appointment
from notifications.models import Notification
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    RelativeFactory,
    UserFactory,
    WaitlistEntryFactory,
    make_actor,
    secretary_of,
)

EXPORT_URL = "/me/data/export.json"


@pytest.fixture
def family(clinic):
    """The clinic's patient with a child; their appointments past and future, the child's, a
    cancelled one; another patient of the same practitioner; and events about each."""
    patient = clinic.patient
    child = RelativeFactory(managed_by=patient, first_name="Ondine", last_name="Vasseur-Lebrun")
    booked = {"practitioner": clinic.practitioner, "reason": clinic.reason, "patient": patient}
    past = AppointmentFactory(
        **booked, start=clinic.slot - timedelta(days=30), status=Appointment.Status.DONE
    )
    future = AppointmentFactory(**booked, start=clinic.slot + timedelta(days=3))
    for_child = AppointmentFactory(**booked, relative=child, start=clinic.slot + timedelta(days=4))
    cancelled = AppointmentFactory(
        **booked, start=clinic.slot + timedelta(days=5), status=Appointment.Status.CANCELLED
    )
    WaitlistEntryFactory(appointment=future)
    Notification.objects.create(
        kind=Notification.Kind.CONFIRMATION,
        channel=Notification.Channel.EMAIL,
        recipient=Notification.Recipient.PATIENT,
        appointment=future,
        idempotency_key=f"confirmation:{future.pk}:patient:email",
    )
    stranger = PatientFactory(first_name="Théodebert", last_name="Grandvilliers")
    theirs = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=stranger,
        start=clinic.slot + timedelta(days=6),
    )
    secretary = secretary_of(clinic.practitioner)
    record_access(actor=make_actor(secretary), action=Action.VIEW, appointments=[future, theirs])
    record_access(
        actor=system_actor("notifications.deliver"), action=Action.VIEW, appointments=[past]
    )
    record_denial(actor=make_actor(stranger.user), appointment_id=future.pk, detail="not visible")
    mine = [past, future, for_child, cancelled]
    return patient, child, mine, stranger, theirs


def _export(client, patient) -> tuple[dict, object]:
    client.force_login(patient.user)
    response = client.get(EXPORT_URL)
    assert response.status_code == 200
    return json.loads(response.content), response


def test_export_contains_every_appointment_and_access_log_entry_of_mine_only(client, family):
    patient, child, mine, stranger, theirs = family

    data, response = _export(client, patient)

    assert response["Content-Disposition"].startswith('attachment; filename="creneau-my-data-')
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert [a["id"] for a in data["appointments"]] == [a.pk for a in mine]  # by start
    about_me = set(AccessEvent.objects.filter(patient_id=patient.pk).values_list("pk", flat=True))
    refusals = set(
        AccessEvent.objects.filter(action=Action.DENIED, appointment_id=mine[1].pk).values_list(
            "pk", flat=True
        )
    )
    assert refusals
    # The export's own events included: it is recorded before the log is read.
    assert {e["id"] for e in data["access_log"]} == about_me | refusals
    body = response.content.decode()
    assert stranger.first_name not in body
    assert stranger.last_name not in body
    assert str(theirs.pk) not in {str(a["id"]) for a in data["appointments"]}
    assert [r["first_name"] for r in data["relatives"]] == ["Ondine"]
    assert data["appointments"][2]["for_relative"] == child.full_name


def test_export_has_a_sane_schema_with_iso_datetimes(client, family):
    patient, *_ = family

    data, _response = _export(client, patient)

    assert data["format"] == "creneau-personal-data/1"
    assert set(data) == {
        "format",
        "generated_at",
        "account",
        "profile",
        "relatives",
        "appointments",
        "waiting_list",
        "notifications",
        "sessions",
        "access_log",
    }
    assert data["profile"]["first_name"] == patient.first_name
    assert data["profile"]["phone"] == patient.phone
    assert data["profile"]["birth_date"] == patient.birth_date.isoformat()
    assert data["account"]["email"] == patient.user.email
    assert data["account"]["two_factor"] == {
        "enabled": False,
        "authenticator_app": False,
        "backup_codes_left": 0,
    }
    appointment = data["appointments"][0]
    assert set(appointment["practitioner"]) == {"id", "name", "specialty", "practice"}
    for moment in (
        data["generated_at"],
        appointment["start"],
        appointment["booked_at"],
        data["access_log"][0]["occurred_at"],
        data["waiting_list"][0]["joined_at"],
        data["notifications"][0]["created_at"],
    ):
        assert datetime.fromisoformat(moment).tzinfo is not None
    assert data["notifications"][0]["kind"] == "confirmation"
    assert "body" not in data["notifications"][0]
    assert len(data["sessions"]) == 1  # this one; never its key
    assert "session_key" not in data["sessions"][0]
    assert all(set(e) >= {"occurred_at", "action", "description"} for e in data["access_log"])
    assert "Dr " in " ".join(e["description"] for e in data["access_log"])


def test_export_is_recorded_as_one_export_of_every_appointment(client, family):
    patient, _child, mine, *_ = family

    _export(client, patient)

    events = AccessEvent.objects.filter(action=Action.EXPORT, actor_user_id=patient.user.pk)
    assert sorted(events.values_list("appointment_id", flat=True)) == sorted(a.pk for a in mine)
    assert len(set(events.values_list("occurred_at", "request_id"))) == 1  # one bulk insert
    assert set(events.values_list("detail", flat=True)) == {"personal data export (JSON)"}


def test_export_without_appointments_still_records_who_exported(client, db):
    patient = PatientFactory()

    data, _response = _export(client, patient)

    assert data["appointments"] == []
    [event] = AccessEvent.objects.filter(action=Action.EXPORT)
    assert (event.patient_id, event.appointment_id) == (patient.pk, None)


def test_page_shows_my_data_and_is_recorded(client, family, django_assert_max_num_queries):
    patient, child, mine, stranger, _theirs = family
    client.force_login(patient.user)

    with django_assert_max_num_queries(25):
        response = client.get("/me/data/")

    assert response.status_code == 200
    page = response.content.decode()
    for text in (patient.first_name, patient.last_name, patient.phone, child.first_name):
        assert text in page
    assert str(mine[0].practitioner) in page
    assert stranger.last_name not in page
    assert 'href="/me/data/export.json"' in page
    assert (
        AccessEvent.objects.filter(action=Action.EXPORT, detail="personal data page").count() == 4
    )


@pytest.mark.parametrize("url", ["/me/data/", EXPORT_URL, "/me/data/delete/"])
def test_staff_have_no_patient_data_page(client, db, otp_login, url):
    otp_login(client, UserFactory(role=Role.PRACTITIONER))

    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", ["/me/data/", EXPORT_URL, "/me/data/delete/"])
def test_anonymous_visitors_are_sent_to_login(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_another_patient_export_holds_nothing_of_mine(client, family):
    patient, child, _mine, stranger, theirs = family

    data, response = _export(client, stranger)

    assert [a["id"] for a in data["appointments"]] == [theirs.pk]
    body = response.content.decode()
    assert patient.last_name not in body
    assert child.first_name not in body
