"""audit.record_access: the one writer of access events (DESIGN invariant 2)."""

import pytest

from accounts.models import Role
from audit.actors import Actor, actor_for, system_actor
from audit.models import AccessEvent, Action, ActorKind, Channel
from audit.services import AppointmentRef, record_access, record_denial
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    UserFactory,
    make_actor,
    secretary_of,
)


def test_an_access_by_a_user_records_who_how_and_what(db):
    appointment = AppointmentFactory()
    user = appointment.patient.user
    actor = Actor(
        kind=ActorKind.USER,
        channel=Channel.API,
        user=user,
        request_id="req-0123456789",
        ip="203.0.113.7",
        user_agent="Mozilla/5.0",
    )

    [event] = record_access(actor=actor, action=Action.VIEW, appointments=[appointment])

    event.refresh_from_db()
    assert (event.actor_kind, event.actor_user_id, event.actor_role) == ("user", user.pk, "patient")
    assert (event.action, event.channel) == (Action.VIEW, Channel.API)
    assert (event.appointment_id, event.patient_id, event.practitioner_id) == (
        appointment.pk,
        appointment.patient_id,
        appointment.practitioner_id,
    )
    assert (event.request_id, event.ip, event.user_agent) == (
        "req-0123456789",
        "203.0.113.7",
        "Mozilla/5.0",
    )
    assert event.on_behalf_of_id is None
    assert event.occurred_at is not None


def test_a_secretary_acts_on_behalf_of_the_practitioner_of_each_appointment(db):
    first, second = AppointmentFactory(), AppointmentFactory()
    secretary = secretary_of(first.practitioner)

    record_access(actor=make_actor(secretary), action=Action.LIST, appointments=[first, second])

    assert set(AccessEvent.objects.values_list("appointment_id", "on_behalf_of_id")) == {
        (first.pk, first.practitioner_id),
        (second.pk, second.practitioner_id),
    }


def test_an_integration_acts_on_behalf_of_the_practitioner(db):
    appointment = AppointmentFactory()
    actor = Actor(kind=ActorKind.INTEGRATION, channel=Channel.FHIR, integration_id=42, label="Doc")

    [event] = record_access(actor=actor, action=Action.VIEW, appointments=[appointment])

    assert (event.integration_id, event.on_behalf_of_id, event.actor_label) == (
        42,
        appointment.practitioner_id,
        "Doc",
    )


def test_a_practitioner_acts_for_themselves(db):
    appointment = AppointmentFactory()

    [event] = record_access(
        actor=make_actor(appointment.practitioner.user),
        action=Action.VIEW,
        appointments=[appointment],
    )

    assert (event.actor_role, event.on_behalf_of_id) == (Role.PRACTITIONER, None)


def test_the_system_is_recorded_under_the_task_name(db):
    [event] = record_access(actor=system_actor("send_reminders"), action=Action.LIST)

    assert (event.actor_kind, event.actor_label, event.channel, event.actor_user_id) == (
        ActorKind.SYSTEM,
        "send_reminders",
        Channel.TASK,
        None,
    )


def test_an_access_to_nothing_still_records_one_event(db):
    events = record_access(actor=make_actor(None), action=Action.LIST, appointments=[])

    assert len(events) == 1
    assert AccessEvent.objects.get().appointment_id is None


def test_many_appointments_are_recorded_in_one_insert(db, django_assert_num_queries):
    appointments = AppointmentFactory.create_batch(5)

    with django_assert_num_queries(1):
        record_access(actor=system_actor("export"), action=Action.EXPORT, appointments=appointments)

    assert AccessEvent.objects.count() == 5


def test_detail_is_cut_to_its_column(db):
    [event] = record_access(actor=system_actor("x"), action=Action.LIST, detail="d" * 500)

    assert len(event.detail) == 200


def test_a_denial_names_the_appointment_asked_for(db):
    user = UserFactory(role=Role.PATIENT)

    record_denial(actor=make_actor(user), appointment_id=1234, detail="not_found")

    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.patient_id, event.detail) == (
        Action.DENIED,
        1234,
        None,
        "not_found",
    )


@pytest.mark.parametrize("appointment_id", [2**63, -1, 10**30])
def test_a_denial_for_an_impossible_id_is_still_recorded(db, appointment_id):
    record_denial(actor=make_actor(None), appointment_id=appointment_id, detail="not_found")

    event = AccessEvent.objects.get()
    assert event.appointment_id is None
    assert event.detail == "not_found (id out of range)"


def test_appointment_ref_stands_for_an_unseen_appointment(db):
    [event] = record_access(
        actor=make_actor(None), action=Action.DENIED, appointments=[AppointmentRef(id=7)]
    )

    assert (event.appointment_id, event.patient_id, event.practitioner_id) == (7, None, None)


def test_the_event_text_names_no_person(db):
    appointment = AppointmentFactory(patient=PatientFactory(first_name="Héloïse"))

    [event] = record_access(actor=system_actor("x"), action=Action.VIEW, appointments=[appointment])

    assert "Héloïse" not in str(event)


# --- Request ids ------------------------------------------------------------------------------


def test_a_well_formed_request_id_from_the_proxy_is_kept(db, client):
    response = client.get("/api/v1/specialties/", HTTP_X_REQUEST_ID="proxy-req-000123")

    assert response["X-Request-ID"] == "proxy-req-000123"


@pytest.mark.parametrize(
    "incoming", ["", "short", "has spaces in it", "x" * 65, "<script>alert</script>"]
)
def test_a_malformed_request_id_is_replaced(db, client, incoming):
    response = client.get("/api/v1/specialties/", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


def test_actor_for_an_anonymous_request(rf):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/", HTTP_USER_AGENT="curl/8")
    request.user = AnonymousUser()
    request.request_id = "req-anonymous-1"

    actor = actor_for(request, channel=Channel.API)

    assert (actor.kind, actor.user, actor.role, actor.channel) == (
        ActorKind.ANONYMOUS,
        None,
        "",
        Channel.API,
    )
    assert (actor.request_id, actor.ip, actor.user_agent) == (
        "req-anonymous-1",
        "127.0.0.1",
        "curl/8",
    )
