"""THE BREACH, REPLAYED (issue #7). Practitioners' agenda software, connected to the platform, is
compromised and used to read the appointments of its practitioners in bulk, from many clients in
parallel. In Creneau it obtains at most its quota's worth of distinct patients, is suspended
(its tokens revoked), an alert is raised, the admins and the granting practitioners are emailed
through the outbox, and every read it made is in the audit log.

Then the detection rules one by one: walking ids, the integration's own baseline, idempotency,
and an admin's reinstatement not being held against it.
"""

import queue
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from accounts.models import Role
from audit.actors import Actor
from audit.models import AccessEvent, Action, ActorKind, Alert, Channel
from audit.services import AppointmentRef, record_access
from booking.models import Appointment
from integrations import tasks
from integrations.detection import detect_harvesting, on_quota_refusal
from integrations.models import Integration, QuotaWindow
from integrations.quotas import admit_patients, current_usage
from integrations.scopes import ALL_SCOPES, APPOINTMENT_READ, PATIENT_READ
from integrations.services import NewIntegration, reinstate_integration
from notifications.models import Notification
from patients.models import Patient
from practitioners.models import Practitioner
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PractitionerFactory,
    UserFactory,
    VisitReasonFactory,
)
from tests.integrations.support import bearer, new_integration, request_token

# 10:00 UTC: the harvest runs well inside one hour of the patients quota.
MOMENT = datetime.fromisoformat("2026-06-01T10:00:00+00:00")
APPOINTMENTS_EACH = 2_050  # x 3 practitioners: 6,150 appointments, as many patients
PAGE = 100
HARVESTERS = 8


def bulk_agenda(practitioner: Practitioner, count: int) -> None:
    """`count` appointments of as many new patients, every 30 minutes from tomorrow."""
    reason = VisitReasonFactory(practitioner=practitioner)
    patients = Patient.objects.bulk_create(
        Patient(first_name=f"Prénom{n}", last_name=f"Nom{n}", phone=f"07{n:08d}")
        for n in range(count)
    )
    first = MOMENT + timedelta(days=1)
    Appointment.objects.bulk_create(
        Appointment(
            practitioner=practitioner,
            patient=patient,
            reason=reason,
            start=first + timedelta(minutes=30 * n),
            end=first + timedelta(minutes=30 * n + 30),
            status=Appointment.Status.BOOKED,
            channel=Appointment.Channel.WEB,
        )
        for n, patient in enumerate(patients)
    )


def search_url(practitioner_id: int, offset: int) -> str:
    return (
        f"/fhir/r4/Appointment?practitioner={practitioner_id}&date=ge2026-06-01"
        f"&_count={PAGE}&_getpagesoffset={offset}"
    )


class Harvest:
    """Many clients of the compromised software, each with its own token and connection,
    pulling pages off one list and ignoring every 429; each stops only once cut off."""

    def __init__(self, created: NewIntegration, practitioners: list[Practitioner]) -> None:
        self.created = created
        self.pages: queue.Queue[str] = queue.Queue()
        for offset in range(0, APPOINTMENTS_EACH, PAGE):
            for practitioner in practitioners:
                self.pages.put(search_url(practitioner.pk, offset))
        self.loot: list[dict[str, Any]] = []
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()

    def run(self) -> None:
        barrier = threading.Barrier(HARVESTERS)
        threads = [threading.Thread(target=self.client, args=(barrier,)) for _ in range(HARVESTERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads), "a harvester is stuck"

    def client(self, barrier: threading.Barrier) -> None:
        try:
            client = Client()
            response = request_token(
                client, self.created, scope=f"{APPOINTMENT_READ} {PATIENT_READ}"
            )
            barrier.wait(timeout=60)
            if response.status_code != 200:
                self.note(response.status_code)
                return
            self.pull(client, response.json()["access_token"])
        finally:
            connection.close()  # back to the pool: threads get no request cleanup

    def pull(self, client: Client, token: str) -> None:
        while True:
            try:
                url = self.pages.get_nowait()
            except queue.Empty:
                return
            response = client.get(url, **bearer(token))
            self.note(response.status_code, response.json().get("entry", []))
            if response.status_code in (401, 403):
                return  # cut off

    def note(self, status: int, entries: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        with self.lock:
            self.statuses[status] += 1
            self.loot.extend(entry["resource"] for entry in entries)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["redis", "database"])
def test_the_breach_replayed_a_harvester_gets_its_quota_at_most_and_is_cut_off(settings, backend):
    assert connection.vendor == "postgresql", "the breach is replayed on PostgreSQL"
    settings.INTEGRATIONS_QUOTA_BACKEND = backend
    with time_machine.travel(MOMENT, tick=True):
        practitioners = [PractitionerFactory() for _ in range(3)]
        for practitioner in practitioners:
            bulk_agenda(practitioner, APPOINTMENTS_EACH)
        admins = [UserFactory(role=Role.ADMIN, is_staff=True) for _ in range(2)]
        created = new_integration(*practitioners, scopes=ALL_SCOPES, name="AgendaSoft")
        integration = created.integration
        assert Appointment.objects.count() >= 6_000

        harvest = Harvest(created, practitioners)
        harvest.run()

        # At most its quota's worth of distinct patients, out of 6,150.
        obtained_ids = Counter(int(resource["id"]) for resource in harvest.loot)
        obtained_patients = set(
            Appointment.objects.filter(pk__in=obtained_ids).values_list("patient_id", flat=True)
        )
        assert 0 < len(obtained_patients) <= integration.patients_per_hour == 500
        pseudonyms = {
            resource["participant"][1]["actor"]["identifier"]["value"] for resource in harvest.loot
        }
        assert len(pseudonyms) == len(obtained_patients)
        assert harvest.statuses[429] >= 1
        assert harvest.statuses.keys() <= {200, 401, 403, 429}

        # Suspended, its tokens revoked, and no new one.
        integration.refresh_from_db()
        assert integration.status == Integration.Status.SUSPENDED
        assert integration.status_reason.startswith("harvest suspected (quota refusals)")
        assert not AccessToken.objects.filter(application=integration.application).exists()
        assert request_token(Client(), created).status_code == 401
        leftover = harvest.pages.qsize()
        assert leftover > 0, "it was cut off before it could walk every page"

        # One alert, for the admins on /audit/.
        alert = Alert.objects.get(integration_id=integration.pk, kind=Alert.Kind.HARVEST)
        assert alert.status == Alert.Status.OPEN
        assert "refusals of its distinct-patients quota" in alert.detail

        # One email to each admin and each granting practitioner, through the outbox.
        emails = Notification.objects.filter(kind=Notification.Kind.SECURITY_ALERT)
        recipients = Counter(emails.values_list("recipient_user_id", flat=True))
        expected = {admin.pk for admin in admins} | {p.user_id for p in practitioners}
        assert set(recipients) == expected
        assert set(recipients.values()) == {1}
        assert all(row.channel == Notification.Channel.EMAIL for row in emails)
        # Delivered (in process here), naming the software and counts, never a patient.
        delivered = {address: message for message in mail.outbox for address in message.to}
        assert set(delivered) == {admin.email for admin in admins} | {
            p.user.email for p in practitioners
        }
        assert all("AgendaSoft" in message.body for message in delivered.values())
        assert not any("Prénom" in message.body for message in delivered.values())

        # Every read it made is in the audit log: one event per appointment it was sent.
        searches = AccessEvent.objects.filter(integration_id=integration.pk, action=Action.SEARCH)
        assert Counter(searches.values_list("appointment_id", flat=True)) == obtained_ids
        assert set(searches.values_list("patient_id", flat=True)) == obtained_patients
        assert set(searches.values_list("actor_kind", "channel").distinct()) == {
            (ActorKind.INTEGRATION, Channel.FHIR)
        }
        refusals = AccessEvent.objects.filter(
            integration_id=integration.pk, action=Action.DENIED, detail="quota patients per hour"
        )
        assert refusals.count() == harvest.statuses[429]

        # Running the rules again changes nothing: one alert, one email each.
        assert detect_harvesting() == []
        assert not on_quota_refusal(integration_id=integration.pk, kind="patients")
        assert Alert.objects.filter(kind=Alert.Kind.HARVEST).count() == 1
        assert emails.count() == len(expected)


# --- The rules, one by one ----------------------------------------------------------------------


def integration_actor(integration: Integration) -> Actor:
    return Actor(
        kind=ActorKind.INTEGRATION,
        channel=Channel.FHIR,
        label=integration.name,
        integration_id=integration.pk,
        scopes=frozenset(ALL_SCOPES),
    )


def agenda_of(practitioner: Practitioner, count: int, *, day: int = 1) -> list[Appointment]:
    """`count` appointments of new patients, every 30 minutes from `day` days ahead."""
    first = timezone.now() + timedelta(days=day)
    return [
        AppointmentFactory(
            practitioner=practitioner,
            patient=PatientFactory(),
            start=first + timedelta(minutes=30 * n),
            end=first + timedelta(minutes=30 * n + 30),
        )
        for n in range(count)
    ]


@pytest.mark.django_db
def test_reading_appointments_one_by_one_by_consecutive_ids_is_walking():
    practitioner = PractitionerFactory()
    integration = new_integration(practitioner).integration
    actor = integration_actor(integration)
    for appointment in agenda_of(practitioner, 20):
        record_access(actor=actor, action=Action.VIEW, appointments=[appointment])

    assert detect_harvesting() == [integration.pk]

    integration.refresh_from_db()
    assert integration.status == Integration.Status.SUSPENDED
    alert = Alert.objects.get(kind=Alert.Kind.HARVEST)
    assert "walking ids" in alert.detail
    assert "20 appointments read one by one" in alert.detail


@pytest.mark.django_db
def test_a_sync_reading_a_few_scattered_appointments_is_not_walking():
    practitioner = PractitionerFactory()
    integration = new_integration(practitioner).integration
    actor = integration_actor(integration)
    appointments = agenda_of(practitioner, 60)
    for appointment in appointments[::3]:  # 20 reads, ids 3 apart
        record_access(actor=actor, action=Action.VIEW, appointments=[appointment])

    assert detect_harvesting() == []
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_many_refused_ids_are_walking():
    integration = new_integration(PractitionerFactory()).integration
    actor = integration_actor(integration)
    for n in range(30):
        record_access(
            actor=actor,
            action=Action.DENIED,
            appointments=[AppointmentRef(id=10_000 + 7 * n)],
            detail="not_found",
        )

    assert detect_harvesting() == [integration.pk]
    assert "30 reads refused" in Alert.objects.get(kind=Alert.Kind.HARVEST).detail


def read_patients(
    integration: Integration, practitioner: Practitioner, count: int, *, day: int = 1
) -> None:
    record_access(
        actor=integration_actor(integration),
        action=Action.SEARCH,
        appointments=agenda_of(practitioner, count, day=day),
    )


@pytest.mark.django_db
def test_far_above_its_own_baseline_is_harvesting_and_its_usual_volume_is_not():
    practitioner = PractitionerFactory()
    integration = new_integration(practitioner).integration
    now = timezone.now()
    for hours_ago in range(2, 30):  # 28 active hours of 50 patients: its baseline
        with time_machine.travel(now - timedelta(hours=hours_ago), tick=False):
            read_patients(integration, practitioner, 50, day=hours_ago * 10)
    with time_machine.travel(now - timedelta(minutes=30), tick=False):
        read_patients(integration, practitioner, 140, day=500)  # under 3 x 50

    assert detect_harvesting(now=now) == []

    with time_machine.travel(now - timedelta(minutes=20), tick=False):
        read_patients(integration, practitioner, 20, day=600)  # 160 in the hour: over 3 x 50
    assert detect_harvesting(now=now) == [integration.pk]
    assert "its median is 50 an hour" in Alert.objects.get(kind=Alert.Kind.HARVEST).detail


@pytest.mark.django_db
def test_without_a_baseline_volume_alone_does_not_suspend():
    practitioner = PractitionerFactory()
    integration = new_integration(practitioner).integration

    read_patients(integration, practitioner, 300)  # a first sync: its quota bounds it

    assert detect_harvesting() == []


@pytest.mark.django_db
def test_quota_refusals_keep_one_quota_alert_and_the_fifth_suspends():
    practitioner = PractitionerFactory()
    UserFactory(role=Role.ADMIN, is_staff=True)
    integration = new_integration(practitioner).integration
    actor = integration_actor(integration)

    for refusal in range(1, 6):
        record_access(actor=actor, action=Action.DENIED, detail="quota patients per hour")
        suspended = on_quota_refusal(integration_id=integration.pk, kind="patients")
        assert suspended == (refusal == 5)

    quota = Alert.objects.get(kind=Alert.Kind.QUOTA, integration_id=integration.pk)
    assert quota.event_count == 5
    assert Alert.objects.filter(kind=Alert.Kind.HARVEST).count() == 1
    assert Notification.objects.filter(kind=Notification.Kind.SECURITY_ALERT).count() == 2


@pytest.mark.django_db
def test_what_led_to_a_suspension_is_not_held_against_a_reinstated_integration():
    practitioner = PractitionerFactory()
    integration = new_integration(practitioner).integration
    actor = integration_actor(integration)
    for _ in range(5):
        record_access(actor=actor, action=Action.DENIED, detail="quota patients per hour")
    assert detect_harvesting() == [integration.pk]
    admin = UserFactory(role=Role.ADMIN, is_staff=True)

    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        assert reinstate_integration(integration_id=integration.pk, by=admin)
        record_access(actor=actor, action=Action.DENIED, detail="quota patients per hour")

        assert detect_harvesting() == []
        assert not on_quota_refusal(integration_id=integration.pk, kind="patients")

    integration.refresh_from_db()
    assert integration.is_active
    assert current_usage(integration)["patients"] == 0


@pytest.mark.django_db
def test_the_periodic_task_runs_the_rules_and_purges_old_quota_windows(settings):
    settings.INTEGRATIONS_QUOTA_BACKEND = "database"
    practitioner = PractitionerFactory()
    walker, quiet = new_integration(practitioner).integration, new_integration().integration
    for appointment in agenda_of(practitioner, 20):
        record_access(
            actor=integration_actor(walker), action=Action.VIEW, appointments=[appointment]
        )
    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        admit_patients(quiet, [1, 2])

    assert tasks.detect_harvesting.delay().get() == 1

    assert Integration.objects.get(pk=walker.pk).status == Integration.Status.SUSPENDED
    assert Integration.objects.get(pk=quiet.pk).is_active
    assert not QuotaWindow.objects.exists()
