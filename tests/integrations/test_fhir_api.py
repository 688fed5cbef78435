"""The FHIR R4 API (issue #7, part 3): resources, searches, paging, booking and cancelling, errors,
query budgets. Every response body is validated with fhir.resources (R4B models).

The clinic fixture (tests/conftest.py) is frozen on Monday 1 June 2026, 08:00 in Paris; its
practitioner is open every day 08:00-18:00 with a 30-minute reason, and `slot` is tomorrow 09:00.
"""

import json
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from audit.models import AccessEvent, Action, ActorKind, Channel
from booking.models import Appointment
from integrations.fhir.pseudonyms import pseudonym
from integrations.models import Integration
from integrations.services import create_integration
from notifications.models import Notification
from tests.factories import AppointmentFactory, known_patient_of
from tests.integrations.fhir_support import (
    FHIR_JSON,
    connect,
    entries,
    link,
    outcome_code,
    validated,
)

BASE = "/fhir/r4/"


def _slot_id(clinic, start: datetime) -> str:
    stamp = start.astimezone(UTC).strftime("%Y%m%d%H%M")
    return f"{clinic.practitioner.pk}-{clinic.reason.pk}-{stamp}"


def _schedule(clinic) -> str:
    return f"Schedule/{clinic.practitioner.pk}-{clinic.reason.pk}"


def _booking(slot_id: str, patient_reference: str, **fields) -> str:
    return json.dumps(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "slot": [{"reference": f"Slot/{slot_id}"}],
            "participant": [{"actor": {"reference": patient_reference}, "status": "accepted"}],
            **fields,
        }
    )


def _post(client, connection, body: str, content_type: str = FHIR_JSON):
    return client.post(f"{BASE}Appointment", body, content_type=content_type, **connection.headers)


def _day_appointments(clinic, count: int, *, day: int = 2, skip: int = 0) -> list[Appointment]:
    """`count` appointments of distinct patients, every 15 minutes from 08:00 (after `skip`
    quarter hours) on `day` June 2026."""
    first = datetime.combine(date(2026, 6, day), time(8), tzinfo=clinic.tz)
    return [
        AppointmentFactory(
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=first + timedelta(minutes=15 * n),
            end=first + timedelta(minutes=15 * n + 15),
        )
        for n in range(skip, skip + count)
    ]


@pytest.fixture
def agenda(clinic):
    """An integration the clinic's practitioner granted every scope."""
    return connect(clinic.practitioner)


# --- metadata, discovery, media types, unknown paths -------------------------------------------


def test_metadata_is_a_public_capability_statement(client, db):
    response = client.get(f"{BASE}metadata")

    assert response.status_code == 200
    statement = validated(response)
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    (rest,) = statement["rest"]
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    token = rest["security"]["extension"][0]["extension"][0]["valueUri"]
    assert token == "http://testserver/oauth/token/"
    interactions = {
        resource["type"]: {item["code"] for item in resource["interaction"]}
        for resource in rest["resource"]
    }
    assert interactions["Appointment"] == {"read", "search-type", "create", "update", "patch"}
    assert set(interactions) == {"Practitioner", "Schedule", "Slot", "Appointment"}
    slot_params = {p["name"] for p in rest["resource"][2]["searchParam"]}
    assert slot_params == {"schedule", "start", "status"}


def test_smart_configuration_names_the_token_endpoint(client, db):
    response = client.get(f"{BASE}.well-known/smart-configuration")

    assert response.status_code == 200
    assert response.json()["token_endpoint"] == "http://testserver/oauth/token/"
    assert "system/Patient.read" in response.json()["scopes_supported"]


def test_unknown_path_answers_an_operation_outcome(client, agenda):
    response = client.get(f"{BASE}Patient", **agenda.headers)

    assert response.status_code == 404
    assert outcome_code(response) == "not-supported"


def test_unsupported_method_answers_405_with_allow(client, agenda):
    response = client.delete(f"{BASE}Appointment/1", **agenda.headers)

    assert response.status_code == 405
    assert response["Allow"] == "GET, PUT, PATCH"
    assert outcome_code(response) == "not-supported"


def test_accept_header_other_than_json_gets_406(client, agenda):
    response = client.get(
        f"{BASE}Practitioner", HTTP_ACCEPT="application/fhir+xml", **agenda.headers
    )

    assert response.status_code == 406
    assert outcome_code(response) == "not-supported"


def test_plain_json_and_format_parameter_are_accepted(client, agenda):
    plain = client.get(f"{BASE}Practitioner", HTTP_ACCEPT="application/json", **agenda.headers)
    formatted = client.get(f"{BASE}Practitioner?_format=json", **agenda.headers)

    assert plain.status_code == formatted.status_code == 200
    assert validated(plain)["total"] == 1


def test_unknown_search_parameter_is_refused_not_ignored(client, agenda):
    response = client.get(f"{BASE}Appointment?patient=Patient/1", **agenda.headers)

    assert response.status_code == 400
    assert outcome_code(response) == "not-supported"


# --- authentication ----------------------------------------------------------------------------


def test_request_without_token_gets_401_with_bearer_challenge(client, db):
    response = client.get(f"{BASE}Practitioner")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert outcome_code(response) == "security"


def test_unknown_token_gets_401_invalid_token(client, db):
    response = client.get(f"{BASE}Practitioner", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_token_from_the_token_endpoint_works(client, clinic):
    created = create_integration(
        name="Agenda Pro",
        practitioner_ids=[clinic.practitioner.pk],
        scopes=["system/Slot.read"],
    )
    token = client.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "scope": "system/Slot.read",
        },
    ).json()["access_token"]

    response = client.get(
        f"{BASE}Slot?schedule={_schedule(clinic)}&_count=1", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 200
    assert validated(response)["total"] > 0


# --- Practitioner, Schedule, Slot ---------------------------------------------------------------


def test_practitioner_search_and_read(client, clinic, agenda):
    practitioner = clinic.practitioner
    bundle = validated(client.get(f"{BASE}Practitioner", **agenda.headers))
    (found,) = entries(bundle)
    read = validated(client.get(f"{BASE}Practitioner/{practitioner.pk}", **agenda.headers))

    assert found == read
    assert read["name"][0]["family"] == practitioner.last_name
    assert read["identifier"][0]["value"] == f"8{practitioner.rpps}"
    by_identifier = client.get(
        f"{BASE}Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|8{practitioner.rpps}",
        **agenda.headers,
    )
    assert validated(by_identifier)["total"] == 1


def test_schedule_per_active_reason(client, clinic, agenda):
    from tests.factories import VisitReasonFactory

    second = VisitReasonFactory(
        practitioner=clinic.practitioner, label="Suivi", duration_minutes=15
    )
    VisitReasonFactory(practitioner=clinic.practitioner, label="Ancien", active=False)

    bundle = validated(
        client.get(f"{BASE}Schedule?actor=Practitioner/{clinic.practitioner.pk}", **agenda.headers)
    )

    ids = [schedule["id"] for schedule in entries(bundle)]
    assert ids == [
        f"{clinic.practitioner.pk}-{clinic.reason.pk}",
        f"{clinic.practitioner.pk}-{second.pk}",
    ]
    read = client.get(f"{BASE}{_schedule(clinic)}", **agenda.headers)
    assert validated(read)["actor"][0]["reference"] == f"Practitioner/{clinic.practitioner.pk}"


def test_slot_search_lists_free_slots_of_the_window(client, clinic, agenda):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    response = client.get(
        f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02&start=lt2026-06-03"
        "&status=free&_count=100",
        **agenda.headers,
    )

    bundle = validated(response)
    slots = entries(bundle)
    assert bundle["total"] == len(slots) == 19  # 08:00-18:00 in 30 minutes, but 09:00 is booked
    assert slots[0]["start"] == "2026-06-02T06:00:00Z"  # 08:00 in Paris
    assert _slot_id(clinic, clinic.slot) not in {slot["id"] for slot in slots}
    assert {slot["status"] for slot in slots} == {"free"}


def test_slot_ids_are_stable_and_read_back(client, clinic, agenda):
    url = f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02T07:00:00Z&_count=2"
    first = entries(validated(client.get(url, **agenda.headers)))
    again = entries(validated(client.get(url, **agenda.headers)))

    assert first == again
    assert first[0]["id"] == _slot_id(clinic, clinic.slot)
    read = client.get(f"{BASE}Slot/{first[0]['id']}", **agenda.headers)
    assert validated(read) == first[0]


def test_taken_or_malformed_slot_reads_as_not_found(client, clinic, agenda):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    taken = client.get(f"{BASE}Slot/{_slot_id(clinic, clinic.slot)}", **agenda.headers)
    malformed = client.get(f"{BASE}Slot/nonsense", **agenda.headers)

    assert taken.status_code == malformed.status_code == 404
    assert outcome_code(taken) == "not-found"


def test_slot_search_needs_a_schedule_and_a_bounded_window(client, clinic, agenda):
    missing = client.get(f"{BASE}Slot", **agenda.headers)
    too_wide = client.get(
        f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02&start=lt2026-07-10",
        **agenda.headers,
    )
    busy = client.get(f"{BASE}Slot?schedule={_schedule(clinic)}&status=busy", **agenda.headers)
    bad_date = client.get(
        f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge02/06/2026", **agenda.headers
    )

    assert [missing.status_code, too_wide.status_code, busy.status_code, bad_date.status_code] == [
        400,
        400,
        400,
        400,
    ]
    assert outcome_code(missing) == "required"
    assert outcome_code(too_wide) == "too-costly"
    assert outcome_code(busy) == "not-supported"
    assert outcome_code(bad_date) == "invalid"


def test_slot_pages_follow_next_links_to_the_end(client, clinic, agenda):
    url = f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02&start=lt2026-06-04&_count=15"
    seen: list[str] = []
    while url:
        bundle = validated(client.get(url, **agenda.headers))
        seen += [slot["id"] for slot in entries(bundle)]
        url = link(bundle, "next")

    assert len(seen) == len(set(seen)) == 40 == bundle["total"]


def test_count_is_capped_at_100(client, clinic, agenda):
    url = (
        f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02&start=lt2026-06-09&_count=500"
    )

    bundle = validated(client.get(url, **agenda.headers))

    assert len(entries(bundle)) == 100
    assert bundle["total"] == 140
    query = parse_qs(urlsplit(link(bundle, "next")).query)
    assert query["_count"] == ["100"]
    assert query["_getpagesoffset"] == ["100"]


# --- Appointment search and read ----------------------------------------------------------------


def test_appointment_search_of_one_day(client, clinic, agenda):
    day = _day_appointments(clinic, 5)
    _day_appointments(clinic, 2, day=3)  # the next day: not asked for

    response = client.get(
        f"{BASE}Appointment?practitioner=Practitioner/{clinic.practitioner.pk}"
        "&date=ge2026-06-02&date=lt2026-06-03",
        **agenda.headers,
    )

    bundle = validated(response)
    found = entries(bundle)
    assert bundle["total"] == 5
    assert [int(item["id"]) for item in found] == [appointment.pk for appointment in day]
    first = found[0]
    assert first["status"] == "booked"
    assert first["start"] == "2026-06-02T06:00:00Z"
    assert first["slot"][0]["reference"] == f"Slot/{_slot_id(clinic, day[0].start)}"
    assert first["participant"][0]["actor"]["reference"] == f"Practitioner/{clinic.practitioner.pk}"


def test_appointment_search_pages_with_next_links_and_caps_count(client, clinic, agenda):
    _day_appointments(clinic, 30)
    _day_appointments(clinic, 30, day=3)
    _day_appointments(clinic, 30, day=4)
    _day_appointments(clinic, 15, day=5)
    url = f"{BASE}Appointment?practitioner={clinic.practitioner.pk}&_count=1000"

    first = validated(client.get(url, **agenda.headers))
    second = validated(client.get(link(first, "next"), **agenda.headers))

    assert len(entries(first)) == 100
    assert first["total"] == 105
    assert len(entries(second)) == 5
    assert link(second, "next") is None
    ids = [item["id"] for item in entries(first) + entries(second)]
    assert len(set(ids)) == 105


def test_appointment_search_filters_on_status(client, clinic, agenda):
    _kept, cancelled = _day_appointments(clinic, 2)
    cancelled.status = Appointment.Status.CANCELLED
    cancelled.save()

    bundle = validated(
        client.get(f"{BASE}Appointment?status=cancelled&date=2026-06-02", **agenda.headers)
    )
    unknown = client.get(f"{BASE}Appointment?status=gone", **agenda.headers)

    assert [item["id"] for item in entries(bundle)] == [str(cancelled.pk)]
    assert unknown.status_code == 400


def test_appointment_read_and_audit(client, clinic, agenda):
    (appointment,) = _day_appointments(clinic, 1)

    response = client.get(f"{BASE}Appointment/{appointment.pk}", **agenda.headers)

    assert validated(response)["id"] == str(appointment.pk)
    event = AccessEvent.objects.get(appointment_id=appointment.pk)
    assert (event.action, event.channel, event.actor_kind) == (
        Action.VIEW,
        Channel.FHIR,
        ActorKind.INTEGRATION,
    )
    assert event.integration_id == agenda.integration.pk
    assert event.on_behalf_of_id == clinic.practitioner.pk


def test_search_records_one_event_per_appointment_returned(client, clinic, agenda):
    day = _day_appointments(clinic, 3)

    client.get(f"{BASE}Appointment?date=2026-06-02", **agenda.headers)

    events = AccessEvent.objects.filter(action=Action.SEARCH, channel=Channel.FHIR)
    assert sorted(event.appointment_id for event in events) == [a.pk for a in day]
    assert {event.integration_id for event in events} == {agenda.integration.pk}


# --- Booking and cancelling through the services ------------------------------------------------


def test_book_a_searched_slot_for_a_known_patient(client, clinic, agenda):
    patient = known_patient_of(clinic.practitioner)
    history = validated(
        client.get(f"{BASE}Appointment?date=lt2026-06-01&_count=1", **agenda.headers)
    )
    reference = entries(history)[0]["participant"][1]["actor"]["identifier"]["value"]
    slots = validated(
        client.get(
            f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02T07:00:00Z&_count=1",
            **agenda.headers,
        )
    )
    slot_id = entries(slots)[0]["id"]

    response = _post(client, agenda, _booking(slot_id, f"Patient/{reference}"))

    assert response.status_code == 201, response.content
    booked = validated(response)
    appointment = Appointment.objects.get(pk=booked["id"])
    assert response["Location"] == f"http://testserver{BASE}Appointment/{appointment.pk}"
    assert (appointment.patient, appointment.relative, appointment.start) == (
        patient,
        None,
        clinic.slot,
    )
    assert appointment.channel == Appointment.Channel.FHIR
    assert booked["slot"][0]["reference"] == f"Slot/{slot_id}"
    event = AccessEvent.objects.get(action=Action.CREATE, appointment_id=appointment.pk)
    assert (event.channel, event.integration_id) == (Channel.FHIR, agenda.integration.pk)
    assert Notification.objects.filter(
        appointment=appointment, kind=Notification.Kind.CONFIRMATION
    ).exists()


def _known_reference(clinic, agenda) -> str:
    patient = known_patient_of(clinic.practitioner)
    return pseudonym(integration_id=agenda.integration.pk, patient_id=patient.pk)


def test_bearer_requests_need_no_csrf_token_and_are_not_cached(clinic, agenda):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    body = _booking(_slot_id(clinic, clinic.slot), f"Patient/{_known_reference(clinic, agenda)}")

    response = _post(client, agenda, body)

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"


def test_second_booking_of_same_slot_gets_409(client, clinic, agenda):
    body = _booking(_slot_id(clinic, clinic.slot), f"Patient/{_known_reference(clinic, agenda)}")

    first = _post(client, agenda, body)
    second = _post(client, agenda, body)

    assert first.status_code == 201
    assert second.status_code == 409
    assert outcome_code(second) == "conflict"
    assert Appointment.objects.filter(start=clinic.slot).count() == 1


def test_booking_by_identifier_with_matching_times(client, clinic, agenda):
    reference = _known_reference(clinic, agenda)
    body = json.dumps(
        {
            "resourceType": "Appointment",
            "status": "proposed",
            "start": "2026-06-02T09:00:00+02:00",
            "end": "2026-06-02T07:30:00Z",
            "slot": [{"reference": f"Slot/{_slot_id(clinic, clinic.slot)}"}],
            "participant": [
                {
                    "actor": {"reference": f"Practitioner/{clinic.practitioner.pk}"},
                    "status": "accepted",
                },
                {
                    "actor": {
                        "identifier": {
                            "system": "urn:creneau:fhir:patient-pseudonym",
                            "value": reference,
                        }
                    },
                    "status": "accepted",
                },
            ],
        }
    )

    response = _post(client, agenda, body)

    assert response.status_code == 201, response.content
    assert validated(response)["status"] == "booked"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"body": "{not json"}, 400, "structure"),
        ({"body": json.dumps({"resourceType": "Patient"})}, 400, "structure"),
        ({"status": "cancelled"}, 400, "required"),
        ({"slot": []}, 400, "required"),
        ({"slot": [{"reference": "Slot/1-2-3"}]}, 422, "processing"),
        ({"start": "2026-06-02T10:00:00Z"}, 422, "processing"),
        ({"patient": "Patient/0123456789abcdef0123456789abcdef"}, 422, "processing"),
        ({"patient": "#new"}, 422, "not-supported"),
        ({"content_type": "application/x-www-form-urlencoded"}, 415, "not-supported"),
    ],
)
def test_invalid_bookings_are_refused(client, clinic, agenda, change, status, code):
    reference = change.get("patient", f"Patient/{_known_reference(clinic, agenda)}")
    fields = {name: value for name, value in change.items() if name in ("status", "slot", "start")}
    body = change.get("body") or _booking(_slot_id(clinic, clinic.slot), reference, **fields)

    response = _post(client, agenda, body, content_type=change.get("content_type", FHIR_JSON))

    assert response.status_code == status, response.content
    assert outcome_code(response) == code
    assert not Appointment.objects.filter(channel=Appointment.Channel.FHIR).exists()


def test_slot_outside_opening_hours_is_not_offered(client, clinic, agenda):
    night = clinic.slot.replace(hour=3)
    body = _booking(_slot_id(clinic, night), f"Patient/{_known_reference(clinic, agenda)}")

    response = _post(client, agenda, body)

    assert response.status_code == 422
    assert outcome_code(response) == "business-rule"


def _cancel_body(appointment: Appointment) -> str:
    return json.dumps(
        {
            "resourceType": "Appointment",
            "id": str(appointment.pk),
            "status": "cancelled",
            "cancelationReason": {"text": "Empêchement"},
            "participant": [{"actor": {"reference": "Patient/x"}, "status": "accepted"}],
        }
    )


def test_cancel_with_put_goes_through_the_service_and_notifies(client, clinic, agenda):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )

    response = client.put(
        f"{BASE}Appointment/{appointment.pk}",
        _cancel_body(appointment),
        content_type=FHIR_JSON,
        **agenda.headers,
    )

    assert response.status_code == 200, response.content
    resource = validated(response)
    assert resource["status"] == "cancelled"
    assert resource["cancelationReason"]["coding"][0]["code"] == "prov"
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancelled_by == Appointment.CancelledBy.PRACTICE
    assert appointment.cancellation_reason == "Empêchement"
    assert Notification.objects.filter(
        appointment=appointment, kind=Notification.Kind.CANCELLATION
    ).exists()
    event = AccessEvent.objects.get(action=Action.CANCEL, appointment_id=appointment.pk)
    assert (event.channel, event.integration_id) == (Channel.FHIR, agenda.integration.pk)


def test_cancel_with_json_patch(client, clinic, agenda):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )
    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]

    response = client.patch(
        f"{BASE}Appointment/{appointment.pk}",
        json.dumps(patch),
        content_type="application/json-patch+json",
        **agenda.headers,
    )

    assert response.status_code == 200, response.content
    assert validated(response)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("method", "body", "content_type", "status"),
    [
        ("put", {"resourceType": "Appointment", "status": "noshow"}, FHIR_JSON, 422),
        ("put", {"resourceType": "Appointment", "id": "0", "status": "cancelled"}, FHIR_JSON, 400),
        (
            "patch",
            [{"op": "replace", "path": "/start", "value": "x"}],
            "application/json-patch+json",
            422,
        ),
        ("patch", [{"op": "replace", "path": "/status", "value": "cancelled"}], FHIR_JSON, 415),
    ],
)
def test_updates_other_than_cancelling_are_refused(
    client, clinic, agenda, method, body, content_type, status
):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )
    if isinstance(body, dict):
        body.setdefault("id", str(appointment.pk))

    response = getattr(client, method)(
        f"{BASE}Appointment/{appointment.pk}",
        json.dumps(body),
        content_type=content_type,
        **agenda.headers,
    )

    assert response.status_code == status, response.content
    validated(response)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_cancelling_twice_is_a_business_rule_error(client, clinic, agenda):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )
    url = f"{BASE}Appointment/{appointment.pk}"
    client.put(url, _cancel_body(appointment), content_type=FHIR_JSON, **agenda.headers)

    again = client.put(url, _cancel_body(appointment), content_type=FHIR_JSON, **agenda.headers)

    assert again.status_code == 422
    assert outcome_code(again) == "business-rule"


# --- Quotas surface as 429 ----------------------------------------------------------------------


def test_request_quota_answers_429_with_retry_after(client, clinic, agenda):
    Integration.objects.filter(pk=agenda.integration.pk).update(requests_per_minute=2)

    answers = [client.get(f"{BASE}Practitioner", **agenda.headers) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert outcome_code(answers[2]) == "throttled"
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    denied = AccessEvent.objects.get(action=Action.DENIED)
    assert (denied.integration_id, denied.channel) == (agenda.integration.pk, Channel.FHIR)


def test_patients_quota_returns_nothing_and_records_the_refusal(client, clinic, agenda):
    _day_appointments(clinic, 3)
    Integration.objects.filter(pk=agenda.integration.pk).update(patients_per_hour=2)

    response = client.get(f"{BASE}Appointment?date=2026-06-02", **agenda.headers)

    assert response.status_code == 429
    assert outcome_code(response) == "throttled"
    assert int(response["Retry-After"]) > 0
    assert not AccessEvent.objects.filter(action=Action.SEARCH).exists()
    denied = AccessEvent.objects.get(action=Action.DENIED)
    assert denied.integration_id == agenda.integration.pk


def test_patients_quota_refusal_leaves_the_appointment_booked(client, clinic, agenda):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
    )
    seen = known_patient_of(clinic.practitioner).appointments.first()
    Integration.objects.filter(pk=agenda.integration.pk).update(patients_per_hour=1)
    assert client.get(f"{BASE}Appointment/{seen.pk}", **agenda.headers).status_code == 200

    response = client.put(
        f"{BASE}Appointment/{appointment.pk}",
        _cancel_body(appointment),
        content_type=FHIR_JSON,
        **agenda.headers,
    )

    assert response.status_code == 429
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


# --- Query budgets: independent of how busy the agenda is ---------------------------------------


def _day_search(clinic) -> str:
    return (
        f"{BASE}Appointment?practitioner=Practitioner/{clinic.practitioner.pk}"
        "&date=ge2026-06-02&date=lt2026-06-03&_count=100"
    )


def _query_count(client, url, headers) -> int:
    """Queries of one request, after one to warm up (the integration's last use is written at
    most once a minute)."""
    client.get(url, **headers)
    return _queries_of(client, url, headers)


def _queries_of(client, url, headers) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(queries)


def test_appointment_day_search_query_budget(client, clinic, agenda, django_assert_max_num_queries):
    _day_appointments(clinic, 4)
    few = _query_count(client, _day_search(clinic), agenda.headers)
    _day_appointments(clinic, 36, skip=4)

    with django_assert_max_num_queries(10):
        response = client.get(_day_search(clinic), **agenda.headers)

    assert validated(response)["total"] == 40
    assert _queries_of(client, _day_search(clinic), agenda.headers) == few


def test_slot_search_of_14_days_query_budget(client, clinic, agenda, django_assert_max_num_queries):
    url = (
        f"{BASE}Slot?schedule={_schedule(clinic)}&start=ge2026-06-02&start=lt2026-06-16&_count=100"
    )
    empty = _query_count(client, url, agenda.headers)
    for day in range(2, 16):
        _day_appointments(clinic, 8, day=day)

    with django_assert_max_num_queries(10):
        response = client.get(url, **agenda.headers)

    assert validated(response)["total"] == 14 * 20 - 14 * 4  # 8 x 15 min = 4 slots a day taken
    assert _queries_of(client, url, agenda.headers) == empty
