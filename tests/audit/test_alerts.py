"""audit.alerts: the rules over the access log, raised once and kept up to date."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Role
from audit.actors import Actor
from audit.alerts import REFRESH_KEY, acknowledge_alert, detect_alerts, refresh_alerts
from audit.models import AccessEvent, Action, ActorKind, Alert, Channel
from audit.services import AppointmentRef, record_access, record_denial
from audit.tasks import detect_audit_alerts
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    UserFactory,
    make_actor,
    secretary_of,
)


@pytest.fixture(autouse=True)
def _fresh_alert_throttle():
    cache.delete(REFRESH_KEY)


def read(user, appointments, *, action=Action.VIEW) -> None:
    record_access(actor=make_actor(user), action=action, appointments=appointments)


def otp_refusals(user, count: int) -> None:
    for _ in range(count):
        record_access(actor=make_actor(user), action=Action.DENIED, detail="otp wrong code (login)")


# --- Staff outside the agendas they work on ------------------------------------------------------


def test_a_secretary_reading_another_agenda_raises_an_alert(db):
    own = AppointmentFactory()
    secretary = secretary_of(own.practitioner)
    elsewhere = AppointmentFactory.create_batch(2)
    read(secretary, [own])
    read(secretary, elsewhere, action=Action.LIST)

    [alert] = detect_alerts()

    assert (alert.kind, alert.status, alert.actor_user_id) == (
        Alert.Kind.OUTSIDE_AGENDA,
        Alert.Status.OPEN,
        secretary.pk,
    )
    assert alert.event_count == 2
    ids = ",".join(str(pk) for pk in sorted(a.practitioner_id for a in elsewhere))
    assert alert.detail == (
        f"practitioners outside their agendas: 2 (ids {ids}); patients: 2; events in 24 h: 2"
    )
    assert Alert.objects.count() == 1


def test_a_practitioner_reading_a_colleague_raises_an_alert_but_not_their_own(db):
    own = AppointmentFactory()
    colleague = AppointmentFactory()
    practitioner = own.practitioner.user
    read(practitioner, [own])
    assert detect_alerts() == []

    read(practitioner, [colleague])

    [alert] = detect_alerts()
    assert (alert.actor_user_id, alert.event_count) == (practitioner.pk, 1)


def test_the_agendas_a_secretary_works_on_raise_nothing(db):
    first, second = AppointmentFactory(), AppointmentFactory()
    secretary = secretary_of(first.practitioner)
    secretary.staff_access.create(practitioner=second.practitioner)
    read(secretary, [first, second])

    assert detect_alerts() == []


@pytest.mark.parametrize("role", [Role.PATIENT, Role.ADMIN])
def test_only_practice_staff_are_held_to_agendas(db, role):
    read(UserFactory(role=role), AppointmentFactory.create_batch(2))

    assert detect_alerts() == []


def test_integrations_and_tasks_are_not_held_to_agendas(db):
    actor = Actor(kind=ActorKind.INTEGRATION, channel=Channel.FHIR, integration_id=3)
    record_access(actor=actor, action=Action.LIST, appointments=AppointmentFactory.create_batch(2))

    assert detect_alerts() == []


def test_a_refusal_is_not_a_read(db):
    secretary = secretary_of(PractitionerFactory())
    elsewhere = AppointmentFactory()
    record_access(
        actor=make_actor(secretary),
        action=Action.DENIED,
        appointments=[
            AppointmentRef(elsewhere.pk, elsewhere.patient_id, elsewhere.practitioner_id)
        ],
    )
    record_denial(actor=make_actor(secretary), appointment_id=elsewhere.pk, detail="not_found")

    assert detect_alerts() == []


def test_reads_older_than_a_day_are_out_of_the_window(db):
    secretary = secretary_of(PractitionerFactory())
    with time_machine.travel(timezone.now() - timedelta(hours=25)):
        read(secretary, [AppointmentFactory()])

    assert detect_alerts() == []


def test_running_the_rules_again_neither_duplicates_nor_rewrites(db):
    secretary = secretary_of(PractitionerFactory())
    read(secretary, [AppointmentFactory()])
    [alert] = detect_alerts()

    assert detect_alerts() == []
    assert Alert.objects.get() == alert


def test_new_reads_update_the_open_alert(db):
    secretary = secretary_of(PractitionerFactory())
    read(secretary, [AppointmentFactory()])
    [alert] = detect_alerts()
    later = timezone.now() + timedelta(minutes=5)

    with time_machine.travel(later):
        read(secretary, AppointmentFactory.create_batch(2))
        [updated] = detect_alerts()

    assert updated.pk == alert.pk
    assert Alert.objects.count() == 1
    updated.refresh_from_db()
    assert updated.event_count == 3
    assert updated.first_seen == alert.first_seen
    assert updated.last_seen > alert.last_seen
    assert "practitioners outside their agendas: 3 " in updated.detail


def test_an_acknowledged_alert_stays_quiet_until_new_reads(db):
    secretary = secretary_of(PractitionerFactory())
    read(secretary, [AppointmentFactory()])
    [alert] = detect_alerts()
    assert acknowledge_alert(alert_id=alert.pk, user_id=99)

    assert detect_alerts() == []

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        read(secretary, [AppointmentFactory()])
        [new] = detect_alerts()
    assert new.pk != alert.pk
    assert (new.status, new.event_count) == (Alert.Status.OPEN, 1)  # only the unreviewed read


def test_acknowledging_twice_or_an_unknown_alert_does_nothing(db):
    alert = Alert.objects.create(kind=Alert.Kind.OTP_FAILURES, actor_user_id=1)

    assert acknowledge_alert(alert_id=alert.pk, user_id=5)
    assert not acknowledge_alert(alert_id=alert.pk, user_id=6)
    assert not acknowledge_alert(alert_id=alert.pk + 1, user_id=6)
    alert.refresh_from_db()
    assert alert.acknowledged_by_id == 5


# --- Repeated second-factor failures -------------------------------------------------------------


def test_five_refused_codes_within_an_hour_raise_an_alert(db):
    user = UserFactory(role=Role.PRACTITIONER)
    otp_refusals(user, 5)

    [alert] = detect_alerts()

    assert (alert.kind, alert.actor_user_id, alert.event_count) == (
        Alert.Kind.OTP_FAILURES,
        user.pk,
        5,
    )
    assert alert.detail == "refused second-factor codes within 1 h: 5"


def test_four_refused_codes_or_other_refusals_raise_nothing(db):
    user = UserFactory(role=Role.ADMIN)
    otp_refusals(user, 4)
    for _ in range(3):
        record_denial(actor=make_actor(user), appointment_id=1, detail="not_found")

    assert detect_alerts() == []


def test_refused_codes_spread_over_more_than_an_hour_raise_nothing(db):
    user = UserFactory(role=Role.SECRETARY)
    with time_machine.travel(timezone.now() - timedelta(minutes=90)):
        otp_refusals(user, 3)
    otp_refusals(user, 3)

    assert detect_alerts() == []


def test_each_user_gets_their_own_alert(db):
    first, second = UserFactory(), UserFactory()
    otp_refusals(first, 5)
    otp_refusals(second, 6)

    alerts = detect_alerts()

    assert sorted((a.actor_user_id, a.event_count) for a in alerts) == [
        (first.pk, 5),
        (second.pk, 6),
    ]


# --- Running the rules ---------------------------------------------------------------------------


def test_the_beat_task_runs_the_rules(db):
    otp_refusals(UserFactory(), 5)

    assert detect_audit_alerts.delay().get() == 1
    assert detect_audit_alerts.delay().get() == 0
    assert Alert.objects.count() == 1


def test_pages_run_the_rules_at_most_once_a_minute(db):
    user = UserFactory()
    otp_refusals(user, 5)
    refresh_alerts()
    assert Alert.objects.count() == 1

    otp_refusals(UserFactory(), 5)
    refresh_alerts()  # throttled
    assert Alert.objects.count() == 1

    cache.delete(REFRESH_KEY)
    refresh_alerts()
    assert Alert.objects.count() == 2


def test_alerts_hold_ids_and_counts_only(db):
    appointment = AppointmentFactory()
    secretary = secretary_of(PractitionerFactory())
    read(secretary, [appointment])
    otp_refusals(secretary, 5)

    alerts = detect_alerts()

    patient, practitioner = appointment.patient, appointment.practitioner
    personal = [patient.first_name, patient.last_name, patient.email, patient.phone]
    personal += [practitioner.first_name, practitioner.last_name, secretary.email]
    assert len(alerts) == 2
    for alert in alerts:
        assert not any(value in alert.detail for value in personal), alert.detail
    assert AccessEvent.objects.count() == 6  # the rules read the log and write nothing to it
