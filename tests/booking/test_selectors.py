"""booking.selectors: what each actor may read, and that every read is recorded."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from audit.actors import system_actor
from audit.models import AccessEvent, Action, Channel
from booking.errors import NotVisible
from booking.models import Appointment
from booking.selectors import access_appointment, appointments_for
from practitioners.models import StaffAccess
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PractitionerFactory,
    RelativeFactory,
    UserFactory,
    make_actor,
    secretary_of,
)


@pytest.fixture
def agendas(db, frozen_now):
    """Two practitioners, each with two appointments of different patients; one of them booked
    by `patient` for a child."""
    patient = PatientFactory()
    child = RelativeFactory(managed_by=patient)
    first, second = PractitionerFactory(), PractitionerFactory()
    soon = frozen_now + timedelta(days=1)
    own = AppointmentFactory(practitioner=first, patient=patient, start=soon)
    childs = AppointmentFactory(
        practitioner=second, patient=patient, relative=child, start=soon + timedelta(hours=1)
    )
    first_other = AppointmentFactory(practitioner=first, start=soon + timedelta(hours=2))
    second_other = AppointmentFactory(practitioner=second, start=soon + timedelta(hours=3))
    return {
        "patient": patient,
        "first": first,
        "second": second,
        "own": own,
        "childs": childs,
        "first_other": first_other,
        "second_other": second_other,
    }


def listed_ids(actor, **filters) -> set[int]:
    return {appointment.pk for appointment in appointments_for(actor=actor, **filters).items}


def test_patient_lists_their_own_and_their_relatives_appointments(agendas):
    actor = make_actor(agendas["patient"].user)

    assert listed_ids(actor) == {agendas["own"].pk, agendas["childs"].pk}


def test_practitioner_lists_only_their_own_agenda(agendas):
    actor = make_actor(agendas["first"].user)

    assert listed_ids(actor) == {agendas["own"].pk, agendas["first_other"].pk}


@pytest.mark.parametrize("level", [StaffAccess.Level.VIEW, StaffAccess.Level.MANAGE])
def test_secretary_lists_only_the_agendas_granted_to_them(agendas, level):
    secretary = secretary_of(agendas["second"], level=level)

    assert listed_ids(make_actor(secretary)) == {agendas["childs"].pk, agendas["second_other"].pk}


def test_secretary_granted_two_agendas_sees_each_appointment_once(agendas):
    secretary = secretary_of(agendas["second"])
    StaffAccess.objects.create(practitioner=agendas["first"], user=secretary)

    page = appointments_for(actor=make_actor(secretary))

    assert page.total == 4
    assert len(page.items) == len({a.pk for a in page.items}) == 4


@pytest.mark.parametrize(
    "make_user",
    [
        pytest.param(lambda: None, id="anonymous"),
        pytest.param(lambda: UserFactory(role=Role.ADMIN), id="admin-outside-admin-pages"),
        pytest.param(lambda: UserFactory(role=Role.PATIENT), id="patient-without-profile"),
        pytest.param(lambda: PatientFactory(user__is_active=False).user, id="inactive-user"),
        pytest.param(lambda: UserFactory(role=Role.SECRETARY), id="secretary-without-grants"),
    ],
)
def test_actors_without_rights_list_nothing(agendas, make_user):
    assert listed_ids(make_actor(make_user())) == set()


def test_admin_reads_every_appointment_through_the_admin_pages(agendas):
    admin = UserFactory(role=Role.ADMIN)

    assert len(listed_ids(make_actor(admin, channel=Channel.ADMIN))) == 4


def test_system_actor_reads_every_appointment(agendas):
    assert len(listed_ids(system_actor("export"))) == 4


def test_listing_records_one_event_per_appointment_in_one_insert(agendas):
    actor = make_actor(agendas["first"].user)

    with CaptureQueriesContext(connection) as queries:
        page = appointments_for(actor=actor)

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    events = AccessEvent.objects.order_by("appointment_id")
    assert [(e.action, e.appointment_id) for e in events] == sorted(
        (Action.LIST, a.pk) for a in page.items
    )
    assert {(e.patient_id, e.practitioner_id) for e in events} == {
        (a.patient_id, a.practitioner_id) for a in page.items
    }
    assert {(e.actor_user_id, e.actor_role, e.channel) for e in events} == {
        (agendas["first"].user.pk, Role.PRACTITIONER, Channel.API)
    }


def test_listing_nothing_records_one_event(agendas):
    lonely = PatientFactory()

    page = appointments_for(actor=make_actor(lonely.user))

    assert page.items == []
    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.actor_user_id) == (
        Action.LIST,
        None,
        lonely.user.pk,
    )


def test_listing_records_only_the_page_returned(agendas):
    page = appointments_for(actor=system_actor("export"), limit=3)

    assert len(page.items) == 3
    assert page.total == 4
    assert page.has_next
    assert AccessEvent.objects.count() == 3


def test_listing_a_secretarys_reads_are_recorded_on_behalf_of_the_practitioner(agendas):
    secretary = secretary_of(agendas["second"])

    appointments_for(actor=make_actor(secretary))

    assert set(AccessEvent.objects.values_list("on_behalf_of_id", flat=True)) == {
        agendas["second"].pk
    }


def test_listing_filters_by_practitioner_time_and_status(agendas):
    actor = system_actor("export")
    agendas["first_other"].status = Appointment.Status.CANCELLED
    agendas["first_other"].save()
    own_start = agendas["own"].start

    assert listed_ids(actor, practitioner_id=agendas["first"].pk) == {
        agendas["own"].pk,
        agendas["first_other"].pk,
    }
    assert listed_ids(actor, status=Appointment.Status.CANCELLED) == {agendas["first_other"].pk}
    assert listed_ids(actor, start_from=own_start + timedelta(minutes=1)) == {
        agendas["childs"].pk,
        agendas["first_other"].pk,
        agendas["second_other"].pk,
    }
    assert listed_ids(actor, start_before=own_start + timedelta(minutes=1)) == {agendas["own"].pk}


def test_listing_pages_in_start_order(agendas):
    actor = system_actor("export")

    first_page = appointments_for(actor=actor, limit=2)
    second_page = appointments_for(actor=actor, offset=2, limit=2)

    starts = [a.start for a in first_page.items + second_page.items]
    assert starts == sorted(starts)
    assert not second_page.has_next
    assert len({a.pk for a in first_page.items + second_page.items}) == 4


def test_access_appointment_returns_an_own_appointment_and_records_a_view(agendas):
    actor = make_actor(agendas["patient"].user)

    appointment = access_appointment(actor=actor, appointment_id=agendas["childs"].pk)

    assert appointment == agendas["childs"]
    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.patient_id, event.practitioner_id) == (
        Action.VIEW,
        appointment.pk,
        appointment.patient_id,
        appointment.practitioner_id,
    )


@pytest.mark.parametrize(
    ("who", "appointment"),
    [
        ("patient", "first_other"),
        ("first", "childs"),
        ("anonymous", "own"),
        ("secretary-of-first", "second_other"),
    ],
)
def test_access_appointment_of_another_raises_not_visible(agendas, who, appointment):
    users = {
        "patient": lambda: agendas["patient"].user,
        "first": lambda: agendas["first"].user,
        "anonymous": lambda: None,
        "secretary-of-first": lambda: secretary_of(agendas["first"]),
    }
    target = agendas[appointment]

    with pytest.raises(NotVisible) as refused:
        access_appointment(actor=make_actor(users[who]()), appointment_id=target.pk)

    assert refused.value.appointment_id == target.pk
    assert not AccessEvent.objects.exists()  # the denial is recorded by the error handlers


def test_access_appointment_that_does_not_exist_raises_not_visible(agendas):
    with pytest.raises(NotVisible):
        access_appointment(actor=system_actor("export"), appointment_id=10**9)
