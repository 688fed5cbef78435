"""Delivery through a real Redis and a real Celery worker process (issue 3, "Tests").

Each test commits its rows (transaction=True) so that the worker, a `celery -A config worker`
subprocess on the test database, sees them. The broker is a redis-server of this module's own, so
it can be stopped and started without disturbing anything else. SMS go to a file sink
(worker_harness.py), emails to Django's file backend; both are read back by idempotency key.
"""

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from shutil import which
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from kombu import pools

from audit.models import Channel
from booking.models import Appointment
from booking.services import book_appointment, cancel_appointment, reschedule_appointment
from config.celery import app
from notifications.models import Notification
from notifications.tasks import deliver_notifications, relay_pending
from patients.models import Patient
from tests.factories import (
    PatientFactory,
    PractitionerFactory,
    UserFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    make_actor,
)
from tests.notifications.worker_harness import (
    ROOT,
    SMS_SINK,
    PrivateRedis,
    Worker,
    calls,
    delivered,
    wait_until,
)
from tests.otp import otp_login

pytestmark = pytest.mark.django_db(transaction=True)
Status = Notification.Status
# A worker reconnecting to a restarted Redis retries after 2 s, then 4 s more, and so on.
DELIVERY_TIMEOUT = 20


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    redis.stop()


def _reset_producer_pool() -> None:
    # Connections made to another broker (or to none, eagerly) must not be reused. kombu keeps
    # its pools in a process-wide registry: reset it, as Celery does after a fork.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(private_redis: PrivateRedis, transactional_db: None) -> Iterator[PrivateRedis]:
    """This process publishes to the private Redis instead of running tasks eagerly. It runs
    after tests/conftest.py's autouse fixture that makes them eager, and is undone before it."""
    # The worker process shares the test database, so it must be a server (`make test` uses
    # PostgreSQL); never skipped: a missing service fails with a line saying what to install.
    assert connection.vendor == "postgresql", "worker tests need PostgreSQL (DATABASE_URL)"
    assert which("redis-server"), "worker tests need redis-server: apt-get install redis-server"
    if private_redis.process is None:
        private_redis.start()  # a test stopped it and failed before starting it again
    private_redis.flush()  # no message left over by another test (an unacked one, an ETA)
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = private_redis.url, False
    _reset_producer_pool()
    yield private_redis
    app.conf.broker_url, app.conf.task_always_eager = saved
    _reset_producer_pool()


def _database_url() -> str:
    """The test database pytest-django created, for the worker."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def outbox(tmp_path: Path) -> SimpleNamespace:
    """Where the worker's messages land: `sms` (the sink file) and `email` (a folder)."""
    var = tmp_path / "var"
    return SimpleNamespace(var=var, sms=tmp_path / "sms.log", email=var / "outbox" / "email")


def _delivered(outbox: SimpleNamespace) -> dict[str, int]:
    return dict(delivered(outbox.sms, outbox.email))


@pytest.fixture
def start_worker(
    broker: PrivateRedis, outbox: SimpleNamespace, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers on the test database and the private Redis. All are killed at teardown,
    before pytest-django empties the database."""
    workers: list[Worker] = []
    base = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DATABASE_POOL": "0",
        "REDIS_URL": broker.url,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "BLIND_INDEX_KEY": settings.BLIND_INDEX_KEY,
        "AUDIT_CHAIN_KEY": settings.AUDIT_CHAIN_KEY,
        "CRENEAU_VAR_DIR": str(outbox.var),  # emails: Django's file backend under it
        "EMAIL_URL": "",
        "SMS_BACKEND": SMS_SINK,
        "SINK_FILE": str(outbox.sms),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "INFO",
    }

    def start(**env: str) -> Worker:
        worker = Worker(env={**base, **env}, log=tmp_path / "worker.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


@pytest.fixture
def practice() -> SimpleNamespace:
    """A practitioner open 08:00-18:00 every day (Europe/Paris) with a 30-minute reason, and
    `slot`: 10:00 local three days from now, so no reminder is due during the test."""
    practitioner = PractitionerFactory(cancellation_notice_hours=24)
    reason = VisitReasonFactory(practitioner=practitioner, duration_minutes=30)
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner,
            weekday=weekday,
            start_time=wall_time(8),
            end_time=wall_time(18),
        )
    tz = practitioner.practice.tz
    day = timezone.now().astimezone(tz).date() + timedelta(days=3)
    slot = datetime.combine(day, wall_time(10), tzinfo=tz)
    return SimpleNamespace(practitioner=practitioner, reason=reason, slot=slot)


# --- Helpers ----------------------------------------------------------------------------------


def _book(practice: SimpleNamespace, patient: Patient, start: datetime) -> Appointment:
    return book_appointment(
        actor=make_actor(patient.user, channel=Channel.WEB),
        practitioner=practice.practitioner,
        reason=practice.reason,
        start=start,
        patient=patient,
    )


def _row(key: str) -> Notification:
    return Notification.objects.get(idempotency_key=key)


def _done(*keys: str, status: str = Status.SENT) -> Callable[[], bool]:
    rows = Notification.objects.filter(idempotency_key__in=keys, status=status)
    return lambda: rows.count() == len(keys)


def _once(*keys: str) -> dict[str, int]:
    """The sink lines when each key went out once: "<channel> <key>", the channel ending the key."""
    return {f"{key.rsplit(':', 1)[1]} {key}": 1 for key in keys}


# --- Tests ------------------------------------------------------------------------------------


def test_booking_cancelling_and_rescheduling_each_send_one_message(
    start_worker: Callable[..., Worker], outbox: SimpleNamespace, practice: SimpleNamespace
) -> None:
    start_worker()
    patient = PatientFactory()  # email and phone: email first, both for a cancellation

    appointment = _book(practice, patient, practice.slot)
    confirmation = f"confirmation:{appointment.pk}:patient:email"
    wait_until(_done(confirmation), timeout=DELIVERY_TIMEOUT, what="the confirmation")
    # A redelivered task (acks_late) or the relay racing the after-commit send hands the same
    # row out twice: the compare-and-swap claim turns the second into a no-op.
    deliver_notifications.delay([_row(confirmation).pk])

    cancel_appointment(actor=make_actor(patient.user), appointment_id=appointment.pk)
    cancellations = [
        f"cancellation:{appointment.pk}:patient:email",
        f"cancellation:{appointment.pk}:patient:sms",
        f"cancellation:{appointment.pk}:practitioner:email",
    ]
    wait_until(_done(*cancellations), timeout=DELIVERY_TIMEOUT, what="the cancellations")

    first = _book(practice, patient, practice.slot + timedelta(hours=1))
    moved = reschedule_appointment(
        actor=make_actor(patient.user), appointment_id=first.pk, start=practice.slot
    )
    confirmation_2 = f"confirmation:{first.pk}:patient:email"
    # The patient moved it: they are told, and so is the practitioner.
    reschedules = [
        f"reschedule:{moved.pk}:patient:email",
        f"reschedule:{moved.pk}:practitioner:email",
    ]
    wait_until(_done(confirmation_2, *reschedules), timeout=DELIVERY_TIMEOUT, what="reschedule")

    assert _delivered(outbox) == _once(confirmation, *cancellations, confirmation_2, *reschedules)
    sent = Notification.objects.filter(status=Status.SENT)
    assert set(sent.values_list("attempts", flat=True)) == {1}
    # Reminders wait for the relay at their due time; those of a cancelled booking never go.
    reminders = Notification.objects.filter(kind=Notification.Kind.REMINDER)
    assert set(reminders.filter(appointment=moved).values_list("status", flat=True)) == {
        Status.PENDING
    }
    assert set(reminders.exclude(appointment=moved).values_list("status", flat=True)) == {
        Status.CANCELLED
    }


def test_booking_while_redis_is_down_is_delivered_once_redis_is_back(
    start_worker: Callable[..., Worker],
    broker: PrivateRedis,
    outbox: SimpleNamespace,
    practice: SimpleNamespace,
    settings: SimpleNamespace,
) -> None:
    start_worker()
    patient = PatientFactory()
    broker.stop()

    started = time.monotonic()
    appointment = _book(practice, patient, practice.slot)
    assert time.monotonic() - started < 5  # the patient is not held by the outage (~0.1 s)
    key = f"confirmation:{appointment.pk}:patient:email"
    time.sleep(1)
    assert _row(key).status == Status.PENDING
    assert _delivered(outbox) == {}

    broker.start()  # same port, empty: whatever it held is gone
    # The booking marked the row as handed out (enqueued_at) before its publish failed, so the
    # relay leaves it alone for NOTIFICATIONS_RELAY_GRACE_SECONDS (120 s): it goes out with the
    # second or third relay after the outage. This test does not wait that long.
    settings.NOTIFICATIONS_RELAY_GRACE_SECONDS = 0
    assert relay_pending() == 1
    wait_until(_done(key), timeout=DELIVERY_TIMEOUT, what="the confirmation after the outage")
    assert relay_pending() == 0  # nothing is due any more: later relays send nothing again

    assert _delivered(outbox) == _once(key)
    assert _row(key).attempts == 1


@pytest.mark.parametrize(
    "provider_got_it", [False, True], ids=["killed-before-provider", "killed-after-provider"]
)
def test_worker_killed_mid_send_is_delivered_once_after_restart(
    start_worker: Callable[..., Worker],
    outbox: SimpleNamespace,
    practice: SimpleNamespace,
    provider_got_it: bool,
) -> None:
    """SIGKILL to the whole worker (parent and pool child) while the provider call is in
    flight. The broker message stays unacked in Redis until its visibility timeout (an hour):
    what recovers the row is its expired claim, handed out again by the relay."""
    claim = {"NOTIFICATIONS_CLAIM_SECONDS": "4"}  # above the sink's 3 s, as it must be
    first = start_worker(
        SINK_DELAY_SECONDS="3", SINK_DELAY_AFTER_WRITE="1" if provider_got_it else "0", **claim
    )
    patient = PatientFactory(email="")  # SMS, through the sink whose timing the test controls
    appointment = _book(practice, patient, practice.slot)
    key = f"confirmation:{appointment.pk}:patient:sms"
    wait_until(lambda: _row(key).status == Status.SENDING, timeout=10, what="the send")
    if provider_got_it:
        wait_until(lambda: _delivered(outbox), timeout=5, what="the provider to accept")
    else:
        time.sleep(0.5)  # in the middle of the 3 s call, before the provider has it
    first.kill()
    assert _row(key).status == Status.SENDING
    assert relay_pending() == 0  # claimed still: a slow worker is not raced

    start_worker(**claim)
    wait_until(
        lambda: _row(key).claimed_until < timezone.now(), timeout=10, what="the claim to expire"
    )
    assert relay_pending() == 1
    wait_until(_done(key), timeout=DELIVERY_TIMEOUT, what="the send after the restart")

    row = _row(key)
    assert row.attempts == 2
    lines = _delivered(outbox)
    if provider_got_it:
        # The provider accepted the message, then the worker died before marking the row sent:
        # the row cannot tell, so it is sent again, with the same idempotency key. Only the
        # provider can drop that repeat (delivery.py passes the key for that); this sink records
        # both, and counted by key the patient gets one message.
        assert lines == {f"sms {key}": 2}
        assert len(set(lines)) == 1
    else:
        # Killed before the provider had it: one message, nothing to deduplicate.
        assert lines == _once(key)


def test_provider_errors_are_retried_with_backoff_then_failed_without_blocking_others(
    start_worker: Callable[..., Worker],
    outbox: SimpleNamespace,
    practice: SimpleNamespace,
    client: Client,
    tmp_path: Path,
) -> None:
    flaky, rejected, other = (PatientFactory(email="") for _ in range(3))  # SMS only
    provider_down = tmp_path / "provider-down"
    start_worker(
        SINK_DOWN_FLAG=str(provider_down),
        SINK_REJECT_NUMBERS=rejected.phone,  # an invalid number: every attempt fails
        NOTIFICATIONS_MAX_ATTEMPTS="3",
        NOTIFICATIONS_RETRY_BASE_SECONDS="1",
    )
    provider_down.touch()
    flaky_key = f"confirmation:{_book(practice, flaky, practice.slot).pk}:patient:sms"
    wait_until(lambda: _row(flaky_key).attempts == 1, timeout=10, what="the first attempt")
    wait_until(lambda: _row(flaky_key).status == Status.PENDING, timeout=10, what="a retry")
    assert _row(flaky_key).last_error == "ProviderUnavailable"
    provider_down.unlink()  # back before the retry, due 1 s after the first attempt
    later = practice.slot + timedelta(hours=1)
    rejected_appointment = _book(practice, rejected, later)
    other_appointment = _book(practice, other, later + timedelta(hours=1))
    rejected_key = f"confirmation:{rejected_appointment.pk}:patient:sms"
    other_key = f"confirmation:{other_appointment.pk}:patient:sms"
    # One batch holding messages the provider rejects and good ones: the reminders of both
    # appointments, made due now, handed out together by the relay.
    reminders = Notification.objects.filter(kind=Notification.Kind.REMINDER)
    reminders.filter(appointment__in=[rejected_appointment, other_appointment]).update(
        scheduled_for=timezone.now()
    )
    assert relay_pending() == 4
    other_reminders = list(
        reminders.filter(appointment=other_appointment).values_list("idempotency_key", flat=True)
    )
    rejected_reminders = list(
        reminders.filter(appointment=rejected_appointment).values_list("idempotency_key", flat=True)
    )

    good = [flaky_key, other_key, *other_reminders]
    wait_until(_done(*good), timeout=DELIVERY_TIMEOUT, what="the good ones")
    bad = [rejected_key, *rejected_reminders]
    wait_until(_done(*bad, status=Status.FAILED), timeout=DELIVERY_TIMEOUT, what="failures")

    assert _delivered(outbox) == _once(*good)
    # Retried after its backoff (a second time only if this process stalled past the first).
    assert _row(flaky_key).attempts >= 2
    assert _row(flaky_key).last_error == ""
    assert {_row(key).attempts for key in good[1:]} == {1}
    failed = _row(rejected_key)
    assert {(_row(key).attempts, _row(key).last_error) for key in bad} == {(3, "ProviderRejected")}
    # Exponential backoff: the attempts 1 s, then 2 s apart (an attempt may call the provider
    # more than once, within milliseconds, depending on how delivery.py splits a batch).
    tries = [moment for moment, _, keys in calls(outbox.sms) if rejected_key in keys]
    starts = [t for i, t in enumerate(tries) if i == 0 or t - tries[i - 1] > 0.5]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.9
    assert starts[2] - starts[1] >= 1.9
    # Nothing blocked: the message booked after the failing one went out at its first attempt,
    # while the failing one was still waiting for its retries.
    assert _row(other_key).sent_at.timestamp() < starts[1]

    # Failed messages are visible in the admin (filtered by status).
    otp_login(client, UserFactory(is_staff=True, is_superuser=True))  # admin: second factor
    page = client.get("/" + settings.ADMIN_URL + "notifications/notification/?status__exact=failed")
    assert page.status_code == 200
    assert f"/notifications/notification/{failed.pk}/change/" in page.content.decode()
    assert f"/notifications/notification/{_row(flaky_key).pk}/change/" not in page.content.decode()
