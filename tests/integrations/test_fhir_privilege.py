"""Least privilege in what the FHIR API returns (issue #7, part 4): each scope allows exactly its
operations, only for the practitioners who granted it; other practitioners' ids answer 404 like
missing ones; patients are per-integration pseudonyms unless Patient.read was granted, and then
name and phone only."""

import json
from datetime import UTC, date, timedelta

import pytest
from django.utils import timezone

from booking.models import Appointment
from integrations.fhir.pseudonyms import pseudonym
from integrations.models import Grant, Integration
from integrations.scopes import APPOINTMENT_READ, APPOINTMENT_WRITE, PATIENT_READ, SLOT_READ
from integrations.services import suspend_integration
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    VisitReasonFactory,
    known_patient_of,
    open_every_day,
)
from tests.integrations.fhir_support import (
    FHIR_JSON,
    connect,
    entries,
    issue_token,
    outcome_code,
    validated,
)

BASE = "/fhir/r4/"
MISSING = 999_999_999
PATIENT = {
    "first_name": "Zéphyrine",
    "last_name": "Quintavalle",
    "phone": "0611223344",
    "email": "zephyrine.q@example.test",
    "birth_date": date(1971, 3, 14),
    "user": None,
}
PERSONAL = ("Zéphyrine", "Quintavalle", "0611223344", "zephyrine", "1971-03-14")


def _stamp(start) -> str:
    return start.astimezone(UTC).strftime("%Y%m%d%H%M")


def _schedule(practitioner, reason) -> str:
    return f"{practitioner.pk}-{reason.pk}"


def _cancel(appointment_id: int) -> str:
    return json.dumps(
        {"resourceType": "Appointment", "id": str(appointment_id), "status": "cancelled"}
    )


def _booking(clinic, reference: str, start) -> str:
    slot = f"{_schedule(clinic.practitioner, clinic.reason)}-{_stamp(start)}"
    return json.dumps(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "slot": [{"reference": f"Slot/{slot}"}],
            "participant": [{"actor": {"reference": reference}, "status": "accepted"}],
        }
    )


def _operations(clinic, appointment: Appointment, reference: str) -> dict:
    practitioner, reason = clinic.practitioner, clinic.reason
    schedule = _schedule(practitioner, reason)
    return {
        "practitioners": lambda c, h: c.get(f"{BASE}Practitioner", **h),
        "schedules": lambda c, h: c.get(f"{BASE}Schedule?actor={practitioner.pk}", **h),
        "slots": lambda c, h: c.get(f"{BASE}Slot?schedule=Schedule/{schedule}", **h),
        "search": lambda c, h: c.get(f"{BASE}Appointment?practitioner={practitioner.pk}", **h),
        "read": lambda c, h: c.get(f"{BASE}Appointment/{appointment.pk}", **h),
        "book": lambda c, h: c.post(
            f"{BASE}Appointment",
            _booking(clinic, reference, clinic.slot + timedelta(hours=2)),
            content_type=FHIR_JSON,
            **h,
        ),
        "cancel": lambda c, h: c.put(
            f"{BASE}Appointment/{appointment.pk}",
            _cancel(appointment.pk),
            content_type=FHIR_JSON,
            **h,
        ),
    }


ALLOWED = {
    SLOT_READ: {"practitioners": 200, "schedules": 200, "slots": 200},
    APPOINTMENT_READ: {"practitioners": 200, "search": 200, "read": 200},
    # Cancelling needs Appointment.read too: an appointment the integration may not see does
    # not exist for it (404), as everywhere.
    APPOINTMENT_WRITE: {"practitioners": 200, "book": 201, "cancel": 404},
    PATIENT_READ: {"practitioners": 200},
}


@pytest.mark.parametrize("scope", sorted(ALLOWED))
def test_each_scope_allows_exactly_its_operations(client, clinic, scope):
    connection = connect(clinic.practitioner, scopes=[scope])
    patient = known_patient_of(clinic.practitioner)
    reference = (
        f"Patient/{pseudonym(integration_id=connection.integration.pk, patient_id=patient.pk)}"
    )
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )

    answers = {
        name: operation(client, connection.headers)
        for name, operation in _operations(clinic, appointment, reference).items()
    }

    expected = {name: ALLOWED[scope].get(name, 403) for name in answers}
    assert {name: answer.status_code for name, answer in answers.items()} == expected
    for name, answer in answers.items():
        validated(answer)
        if answer.status_code == 403:
            assert outcome_code(answer) == "forbidden", name
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_read_and_write_together_cancel(client, clinic):
    connection = connect(clinic.practitioner, scopes=[APPOINTMENT_READ, APPOINTMENT_WRITE])
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )

    response = client.put(
        f"{BASE}Appointment/{appointment.pk}",
        _cancel(appointment.pk),
        content_type=FHIR_JSON,
        **connection.headers,
    )

    assert response.status_code == 200
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED


def test_token_narrower_than_the_grant_limits_the_request(client, clinic):
    connection = connect(clinic.practitioner, token_scopes=[SLOT_READ])
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    search = client.get(f"{BASE}Appointment", **connection.headers)
    slots = client.get(
        f"{BASE}Slot?schedule=Schedule/{_schedule(clinic.practitioner, clinic.reason)}",
        **connection.headers,
    )

    assert (search.status_code, slots.status_code) == (403, 200)


def test_each_practitioner_grants_separately(client, clinic):
    other = PractitionerFactory()
    other_reason = VisitReasonFactory(practitioner=other)
    open_every_day(other)
    connection = connect(clinic.practitioner, scopes=[SLOT_READ], token_scopes=[])
    Grant.objects.create(
        integration=connection.integration, practitioner=other, scopes=[APPOINTMENT_READ]
    )
    token = issue_token(connection.integration, scopes=[SLOT_READ, APPOINTMENT_READ])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    mine = AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason)
    theirs = AppointmentFactory(practitioner=other, reason=other_reason)

    everything = validated(client.get(f"{BASE}Appointment", **headers))
    by_slot_grantor = client.get(
        f"{BASE}Appointment?practitioner={clinic.practitioner.pk}", **headers
    )
    read_mine = client.get(f"{BASE}Appointment/{mine.pk}", **headers)
    their_slots = client.get(
        f"{BASE}Slot?schedule=Schedule/{other.pk}-{other_reason.pk}", **headers
    )

    assert [item["id"] for item in entries(everything)] == [str(theirs.pk)]
    assert by_slot_grantor.status_code == 403
    assert read_mine.status_code == 404
    assert their_slots.status_code == 403


# --- Other practitioners' ids: 404, exactly like missing ones -----------------------------------


def _same_as_missing(client, headers, url: str, missing_url: str) -> None:
    if url.startswith(f"{BASE}Appointment/"):  # the same cancellation too
        answer, missing = (
            client.put(
                target,
                _cancel(int(target.rsplit("/", 1)[1])),
                content_type=FHIR_JSON,
                **headers,
            )
            for target in (url, missing_url)
        )
        assert answer.status_code == missing.status_code == 404, url
        assert validated(answer) == validated(missing)
    answer = client.get(url, **headers)
    missing = client.get(missing_url, **headers)

    assert answer.status_code == missing.status_code == 404, url
    assert validated(answer) == validated(missing)
    assert outcome_code(answer) == "not-found"


def test_other_practitioners_ids_answer_404_for_every_resource_type(client, clinic):
    connection = connect(clinic.practitioner)
    other = PractitionerFactory()
    reason = VisitReasonFactory(practitioner=other)
    open_every_day(other)
    appointment = AppointmentFactory(practitioner=other, reason=reason, start=clinic.slot)
    stamp = _stamp(clinic.slot)
    cases = [
        (f"Practitioner/{other.pk}", f"Practitioner/{MISSING}"),
        (f"Schedule/{other.pk}-{reason.pk}", f"Schedule/{MISSING}-{reason.pk}"),
        (f"Slot/{other.pk}-{reason.pk}-{stamp}", f"Slot/{MISSING}-{reason.pk}-{stamp}"),
        (f"Schedule?actor=Practitioner/{other.pk}", f"Schedule?actor=Practitioner/{MISSING}"),
        (f"Slot?schedule=Schedule/{other.pk}-{reason.pk}", f"Slot?schedule=Schedule/{MISSING}-1"),
        (f"Appointment?practitioner={other.pk}", f"Appointment?practitioner={MISSING}"),
        (f"Appointment/{appointment.pk}", f"Appointment/{MISSING}"),
    ]
    for url, missing_url in cases:
        _same_as_missing(client, connection.headers, BASE + url, BASE + missing_url)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_booking_another_practitioners_slot_is_an_unknown_slot(client, clinic):
    connection = connect(clinic.practitioner)
    other = PractitionerFactory()
    reason = VisitReasonFactory(practitioner=other)
    open_every_day(other)
    patient = known_patient_of(other)
    reference = pseudonym(integration_id=connection.integration.pk, patient_id=patient.pk)

    def book(practitioner_id: int):
        body = _booking(clinic, f"Patient/{reference}", clinic.slot).replace(
            f"Slot/{clinic.practitioner.pk}-{clinic.reason.pk}-",
            f"Slot/{practitioner_id}-{reason.pk}-",
        )
        return client.post(f"{BASE}Appointment", body, content_type=FHIR_JSON, **connection.headers)

    theirs, missing = book(other.pk), book(MISSING)

    assert theirs.status_code == missing.status_code == 422
    assert validated(theirs) == validated(missing)
    assert not Appointment.objects.filter(practitioner=other, start=clinic.slot).exists()


# --- Tokens, grants, integration status ---------------------------------------------------------


def test_expired_token_gets_401(client, clinic):
    connection = connect(clinic.practitioner)
    expired = issue_token(
        connection.integration, scopes=[SLOT_READ], expires_in=timedelta(seconds=-1)
    )

    response = client.get(f"{BASE}Practitioner", HTTP_AUTHORIZATION=f"Bearer {expired}")

    assert response.status_code == 401
    assert outcome_code(response) == "security"


def test_suspension_revokes_tokens_401(client, clinic):
    connection = connect(clinic.practitioner)
    suspend_integration(integration_id=connection.integration.pk, reason="test")

    response = client.get(f"{BASE}Practitioner", **connection.headers)

    assert response.status_code == 401


def test_token_of_a_suspended_integration_gets_403(client, clinic):
    connection = connect(clinic.practitioner)
    Integration.objects.filter(pk=connection.integration.pk).update(
        status=Integration.Status.SUSPENDED
    )

    response = client.get(f"{BASE}Practitioner", **connection.headers)

    assert response.status_code == 403
    assert outcome_code(response) == "forbidden"


def test_revoked_grant_hides_the_practitioner(client, clinic):
    connection = connect(clinic.practitioner)
    appointment = AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason)
    Grant.objects.filter(integration=connection.integration).update(revoked_at=timezone.now())

    practitioner = client.get(f"{BASE}Practitioner/{clinic.practitioner.pk}", **connection.headers)
    read = client.get(f"{BASE}Appointment/{appointment.pk}", **connection.headers)
    search = validated(client.get(f"{BASE}Appointment", **connection.headers))

    assert (practitioner.status_code, read.status_code) == (404, 404)
    assert search["total"] == 0


# --- Pseudonyms and patient details -------------------------------------------------------------


def _history(client, connection) -> list[dict]:
    bundle = validated(client.get(f"{BASE}Appointment?date=lt2026-06-01", **connection.headers))
    return entries(bundle)


def _patient_actor(resource: dict) -> dict:
    (participant,) = [
        item for item in resource["participant"] if item["actor"].get("type") == "Patient"
    ]
    return participant["actor"]


def test_without_patient_read_the_patient_is_a_stable_pseudonym_only(client, clinic):
    known_patient_of(clinic.practitioner, **PATIENT)
    first = connect(clinic.practitioner, scopes=[APPOINTMENT_READ])
    second = connect(clinic.practitioner, scopes=[APPOINTMENT_READ])

    once, again = _history(client, first), _history(client, first)
    elsewhere = _history(client, second)

    references = [_patient_actor(item)["reference"] for item in once]
    assert references == [_patient_actor(item)["reference"] for item in again]
    assert len(set(references)) == 2  # the patient, and the child they brought
    assert all(reference.startswith("Patient/") for reference in references)
    assert not set(references) & {_patient_actor(item)["reference"] for item in elsewhere}
    content = client.get(f"{BASE}Appointment?date=lt2026-06-01", **first.headers).content.decode()
    assert not [value for value in PERSONAL if value.lower() in content.lower()]
    assert "contained" not in content
    assert "telecom" not in content
    assert all("display" not in _patient_actor(item) for item in once)


def test_with_patient_read_name_and_phone_only(client, clinic):
    patient = known_patient_of(clinic.practitioner, **PATIENT)
    child = patient.relatives.get()
    connection = connect(clinic.practitioner, scopes=[APPOINTMENT_READ, PATIENT_READ])

    own, childs = _history(client, connection)

    for resource, person in ((own, patient), (childs, child)):
        (contained,) = resource["contained"]
        assert set(contained) == {"resourceType", "id", "identifier", "name", "telecom"}
        assert contained["name"] == [{"family": person.last_name, "given": [person.first_name]}]
        assert contained["telecom"] == [{"system": "phone", "value": "0611223344"}]
        actor = _patient_actor(resource)
        assert actor["reference"] == f"#{contained['id']}"
        assert actor["identifier"] == contained["identifier"][0]
    content = client.get(f"{BASE}Appointment?date=lt2026-06-01", **connection.headers).content
    assert b"zephyrine.q@example.test" not in content
    assert b"1971-03-14" not in content
    assert b"birthDate" not in content
    assert b"address" not in content


def test_patient_read_applies_per_practitioner(client, clinic):
    other = PractitionerFactory()
    VisitReasonFactory(practitioner=other)
    connection = connect(clinic.practitioner, scopes=[APPOINTMENT_READ, PATIENT_READ])
    Grant.objects.create(
        integration=connection.integration, practitioner=other, scopes=[APPOINTMENT_READ]
    )
    known_patient_of(clinic.practitioner, **PATIENT)
    known_patient_of(other, **{**PATIENT, "phone": "0699887766"})

    history = _history(client, connection)

    detailed = {
        item["participant"][0]["actor"]["reference"]: "contained" in item for item in history
    }
    assert detailed == {
        f"Practitioner/{clinic.practitioner.pk}": True,
        f"Practitioner/{other.pk}": False,
    }
    assert (
        b"0699887766"
        not in client.get(
            f"{BASE}Appointment?practitioner={other.pk}", **connection.headers
        ).content
    )


def test_book_a_relative_by_their_pseudonym(client, clinic):
    patient = known_patient_of(clinic.practitioner)
    child = patient.relatives.get()
    connection = connect(clinic.practitioner, scopes=[APPOINTMENT_READ, APPOINTMENT_WRITE])
    (_own, childs) = _history(client, connection)

    response = client.post(
        f"{BASE}Appointment",
        _booking(clinic, _patient_actor(childs)["reference"], clinic.slot),
        content_type=FHIR_JSON,
        **connection.headers,
    )

    assert response.status_code == 201, response.content
    booked = Appointment.objects.get(pk=validated(response)["id"])
    assert (booked.patient, booked.relative) == (patient, child)
    assert _patient_actor(validated(response))["reference"] == _patient_actor(childs)["reference"]


def test_another_integrations_pseudonym_books_nobody(client, clinic):
    patient = known_patient_of(clinic.practitioner)
    connection = connect(clinic.practitioner)
    stranger = connect(clinic.practitioner)
    foreign = pseudonym(integration_id=stranger.integration.pk, patient_id=patient.pk)

    response = client.post(
        f"{BASE}Appointment",
        _booking(clinic, f"Patient/{foreign}", clinic.slot),
        content_type=FHIR_JSON,
        **connection.headers,
    )

    assert response.status_code == 422
    assert outcome_code(response) == "processing"


def test_a_patient_of_another_practitioner_cannot_be_booked(client, clinic):
    other = PractitionerFactory()
    VisitReasonFactory(practitioner=other)
    elsewhere = known_patient_of(other)
    connection = connect(clinic.practitioner, other)
    reference = pseudonym(integration_id=connection.integration.pk, patient_id=elsewhere.pk)

    response = client.post(
        f"{BASE}Appointment",
        _booking(clinic, f"Patient/{reference}", clinic.slot),
        content_type=FHIR_JSON,
        **connection.headers,
    )

    assert response.status_code == 422
    assert not Appointment.objects.filter(start=clinic.slot).exists()
