"""Delivering outbox rows: provider errors and backoff, failed rows in the admin, claims, dropped
reminders, the audit of what delivery reads, and the relay. It is Monday 1 June 2026, 08:00 in
Paris (`frozen_now`); messages land in memory (`mail.outbox`, `notifications.sms.outbox`)."""

import logging
from datetime import datetime, timedelta
from io import StringIO
from typing import Any, ClassVar

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.models import AccessEvent, Action, ActorKind, Channel
from booking.models import Appointment
from booking.services import book_appointment, cancel_appointment
from notifications import sms
from notifications.delivery import claim, deliver
from notifications.models import Notification
from notifications.services import notify_appointment, outbox_row, schedule_reminders
from notifications.sms import BaseSmsBackend, SmsMessage
from notifications.tasks import deliver_notifications, relay_pending
from tests.factories import AppointmentFactory, PatientFactory, UserFactory, make_actor

Kind = Notification.Kind
Status = Notification.Status
BOUNCING = "bounce"


class ProviderDown(Exception):
    """What a provider raises; its text quotes the address, as real ones often do."""


class FailingSms(BaseSmsBackend):
    def send_messages(self, messages: list[SmsMessage]) -> int:
        raise ProviderDown(f"provider refused {messages[0].to}")


class FailingEmail(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise ProviderDown(f"550 mailbox unavailable: {email_messages[0].to[0]}")


class UnreachableEmail(LocmemEmailBackend):
    def open(self) -> bool:
        raise ConnectionRefusedError("smtp.example.test:25")


class BouncingEmail(LocmemEmailBackend):
    """Sends in order and stops at the first bouncing address, like SMTP does: the messages
    before it are already gone."""

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if message.to[0].startswith(BOUNCING):
                raise ProviderDown(f"550 no such mailbox: {message.to[0]}")
            super().send_messages([message])
        return len(messages)


class OutlivesItsClaim(LocmemEmailBackend):
    """A send that hangs until its claim has expired and another worker has claimed the row
    (`taken_over`), then fails."""

    taken_over: ClassVar[list[Notification]] = []

    def send_messages(self, messages: Any) -> int:
        later = timezone.now() + timedelta(seconds=django_settings.NOTIFICATIONS_CLAIM_SECONDS + 1)
        with time_machine.travel(later, tick=False):
            sending = Notification.objects.filter(status=Status.SENDING).values_list("pk")
            type(self).taken_over += claim([pk for (pk,) in sending])
        raise ProviderDown("timed out")


class AtomicBatchSms(BaseSmsBackend):
    """A provider whose batch endpoint sends all of a call or nothing; it rejects one number."""

    atomic_batches = True
    calls: ClassVar[list[list[str]]] = []
    rejected = "0600000000"

    def send_messages(self, messages: list[SmsMessage]) -> int:
        type(self).calls.append([m.to for m in messages])
        if any(m.to == self.rejected for m in messages):
            raise ProviderDown(f"invalid number {self.rejected}")
        sms.outbox.extend(messages)
        return len(messages)


def backend_path(backend: type) -> str:
    return f"{__name__}.{backend.__name__}"


def confirmation_row(**patient_fields: Any) -> Notification:
    appointment = AppointmentFactory(patient=PatientFactory(**patient_fields))
    (row,) = notify_appointment(kind=Kind.CONFIRMATION, appointment=appointment)
    return Notification.objects.get(idempotency_key=row.idempotency_key)


def reloaded(row: Notification) -> Notification:
    row.refresh_from_db()
    return row


# --- Provider errors ------------------------------------------------------------------------


def test_provider_error_puts_the_row_back_with_backoff_and_no_address(
    frozen_now, db, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = backend_path(FailingSms)
    appointment = AppointmentFactory(patient=PatientFactory(user=None, email=""))

    with django_capture_on_commit_callbacks(execute=True):
        notify_appointment(kind=Kind.CONFIRMATION, appointment=appointment)

    row = Notification.objects.get(appointment=appointment)
    assert (row.channel, row.status, row.attempts) == ("sms", Status.PENDING, 1)
    assert row.scheduled_for == frozen_now + timedelta(seconds=30)
    assert row.last_error == "ProviderDown"
    assert row.claimed_until is None
    assert sms.outbox == []


def test_email_provider_error_is_retried_30_60_120_240_seconds_later_then_failed(
    frozen_now, db, settings
):
    settings.EMAIL_BACKEND = backend_path(FailingEmail)
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 5
    row = confirmation_row()
    waits = []

    for _attempt in range(4):
        due = reloaded(row).scheduled_for
        with time_machine.travel(due, tick=False):
            assert deliver([row.pk]).retried == [row.pk]
        waits.append(reloaded(row).scheduled_for - due)
    with time_machine.travel(reloaded(row).scheduled_for, tick=False):
        outcome = deliver([row.pk])

    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert outcome.failed == [row.pk]
    row = reloaded(row)
    assert (row.status, row.attempts, row.last_error) == (Status.FAILED, 5, "ProviderDown")
    assert mail.outbox == []


def test_a_row_is_not_retried_before_its_backoff(frozen_now, db, settings):
    settings.EMAIL_BACKEND = backend_path(FailingEmail)
    row = confirmation_row()
    deliver([row.pk])

    with time_machine.travel(frozen_now + timedelta(seconds=29), tick=False):
        outcome = deliver([row.pk])

    assert outcome.as_dict() == {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
    assert reloaded(row).attempts == 1


def test_failed_rows_are_listed_in_the_admin(frozen_now, db, settings, client, otp_login):
    settings.EMAIL_BACKEND = backend_path(FailingEmail)
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    failed, pending = confirmation_row(), confirmation_row()
    deliver([failed.pk])
    admin = UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
    otp_login(client, admin)  # the admin site needs a second factor
    changelist = reverse("admin:notifications_notification_changelist")

    response = client.get(changelist, {"status__exact": "failed"})

    assert reloaded(failed).status == Status.FAILED
    assert response.status_code == 200
    content = response.content.decode()
    assert reverse("admin:notifications_notification_change", args=[failed.pk]) in content
    assert reverse("admin:notifications_notification_change", args=[pending.pk]) not in content
    assert "ProviderDown" in content


def test_one_bouncing_message_does_not_block_or_resend_the_others(frozen_now, db, settings):
    settings.EMAIL_BACKEND = backend_path(BouncingEmail)
    first = confirmation_row()
    bouncing = confirmation_row(user=None, email=f"{BOUNCING}@example.test")
    last = confirmation_row()

    outcome = deliver([first.pk, bouncing.pk, last.pk])

    assert sorted(outcome.sent) == sorted([first.pk, last.pk])
    assert outcome.retried == [bouncing.pk]
    # Each good message once: the one sent before the bounce is not sent again.
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [first.appointment.patient.email, last.appointment.patient.email]
    )
    assert [reloaded(row).status for row in (first, bouncing, last)] == [
        Status.SENT,
        Status.PENDING,
        Status.SENT,
    ]


def test_an_unreachable_mail_server_retries_the_whole_batch(frozen_now, db, settings):
    settings.EMAIL_BACKEND = backend_path(UnreachableEmail)
    first, second = confirmation_row(), confirmation_row()

    outcome = deliver([first.pk, second.pk])

    assert sorted(outcome.retried) == sorted([first.pk, second.pk])
    assert {reloaded(row).last_error for row in (first, second)} == {"ConnectionRefusedError"}
    assert mail.outbox == []


def test_a_backend_with_atomic_batches_gets_the_batch_in_one_call(frozen_now, db, settings):
    settings.SMS_BACKEND = backend_path(AtomicBatchSms)
    AtomicBatchSms.calls = []
    rows = [confirmation_row(user=None, email="") for _ in range(3)]

    outcome = deliver([row.pk for row in rows])

    assert sorted(outcome.sent) == sorted(row.pk for row in rows)
    assert len(AtomicBatchSms.calls) == 1
    assert len(sms.outbox) == 3


def test_a_rejected_message_in_an_atomic_batch_is_found_without_resending_the_others(
    frozen_now, db, settings
):
    settings.SMS_BACKEND = backend_path(AtomicBatchSms)
    AtomicBatchSms.calls = []
    first = confirmation_row(user=None, email="")
    rejected = confirmation_row(user=None, email="", phone=AtomicBatchSms.rejected)
    last = confirmation_row(user=None, email="")

    outcome = deliver([first.pk, rejected.pk, last.pk])

    assert sorted(outcome.sent) == sorted([first.pk, last.pk])
    assert outcome.retried == [rejected.pk]
    assert len(AtomicBatchSms.calls) == 4  # the batch, then one by one
    assert sorted(message.to for message in sms.outbox) == sorted(
        [first.appointment.patient.phone, last.appointment.patient.phone]
    )


def test_an_sms_provider_error_does_not_block_emails_of_the_same_batch(frozen_now, db, settings):
    settings.SMS_BACKEND = backend_path(FailingSms)
    by_sms = confirmation_row(user=None, email="")
    by_email = confirmation_row()

    outcome = deliver([by_sms.pk, by_email.pk])

    assert (outcome.sent, outcome.retried) == ([by_email.pk], [by_sms.pk])
    assert len(mail.outbox) == 1


# --- Claims ---------------------------------------------------------------------------------


def test_an_abandoned_claim_is_claimed_again(frozen_now, db):
    row = confirmation_row()
    Notification.objects.filter(pk=row.pk).update(
        status=Status.SENDING, attempts=1, claimed_until=frozen_now - timedelta(seconds=1)
    )

    outcome = deliver([row.pk])

    assert outcome.sent == [row.pk]
    assert len(mail.outbox) == 1
    assert (reloaded(row).status, reloaded(row).attempts) == (Status.SENT, 2)


def test_a_live_claim_is_left_to_its_holder(frozen_now, db):
    row = confirmation_row()
    claimed_until = frozen_now + timedelta(seconds=60)
    Notification.objects.filter(pk=row.pk).update(
        status=Status.SENDING, attempts=1, claimed_until=claimed_until
    )

    outcome = deliver([row.pk])

    assert outcome.as_dict() == {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
    assert mail.outbox == []
    assert (reloaded(row).status, reloaded(row).claimed_until) == (Status.SENDING, claimed_until)


def test_a_send_that_outlives_its_claim_leaves_the_row_to_the_worker_that_took_it_over(
    frozen_now, db, settings
):
    settings.EMAIL_BACKEND = backend_path(OutlivesItsClaim)
    OutlivesItsClaim.taken_over = []
    row = confirmation_row()

    outcome = deliver([row.pk])  # the send hangs past its claim, then fails

    (new_holder,) = OutlivesItsClaim.taken_over
    row = reloaded(row)
    # Still the new holder's: put back to pending, it would be sent a second time.
    assert (row.status, row.claimed_until, row.attempts) == (
        Status.SENDING,
        new_holder.claimed_until,
        2,
    )
    assert outcome.as_dict() == {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}


# --- Dropped rows and audit -----------------------------------------------------------------


def test_a_reminder_of_a_cancelled_appointment_is_dropped_not_sent(frozen_now, db):
    appointment = AppointmentFactory(start=frozen_now + timedelta(days=2))
    reminders = schedule_reminders(appointment=appointment)
    # Cancelled by a path that did not cancel the reminders (or raced the relay).
    Appointment.objects.filter(pk=appointment.pk).update(status=Appointment.Status.CANCELLED)
    ids = list(Notification.objects.filter(kind=Kind.REMINDER).values_list("pk", flat=True))
    assert len(ids) == len(reminders) == 2

    with time_machine.travel(appointment.start, tick=False):
        outcome = deliver(ids)

    assert sorted(outcome.dropped) == sorted(ids)
    assert sms.outbox == []
    assert mail.outbox == []
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.CANCELLED}


def test_delivery_records_its_reading_of_the_appointments(frozen_now, db):
    first, second = confirmation_row(), confirmation_row()

    deliver([first.pk, second.pk])

    events = AccessEvent.objects.filter(actor_label="notifications.deliver")
    fields = ("actor_kind", "channel", "action", "appointment_id", "patient_id")
    expected = [
        (
            ActorKind.SYSTEM,
            Channel.TASK,
            Action.VIEW,
            row.appointment_id,
            row.appointment.patient_id,
        )
        for row in (first, second)
    ]
    assert sorted(events.values_list(*fields)) == sorted(expected)


def test_delivery_records_one_event_per_appointment_read(frozen_now, db):
    appointment = AppointmentFactory()
    appointment.cancelled_by = Appointment.CancelledBy.PATIENT
    rows = notify_appointment(kind=Kind.CANCELLATION, appointment=appointment)
    ids = list(Notification.objects.values_list("pk", flat=True))
    assert len(rows) == len(ids) == 3  # patient email and SMS, practitioner email

    deliver(ids)

    events = AccessEvent.objects.filter(actor_label="notifications.deliver")
    assert list(events.values_list("appointment_id", flat=True)) == [appointment.pk]


# --- Relay ----------------------------------------------------------------------------------


def pending_row(*, scheduled_for: datetime, enqueued_at: datetime | None) -> Notification:
    appointment = AppointmentFactory()
    row = outbox_row(
        kind=Kind.CONFIRMATION,
        channel=Notification.Channel.EMAIL,
        recipient=Notification.Recipient.PATIENT,
        key=f"confirmation:{appointment.pk}:patient:email",
        appointment=appointment,
        scheduled_for=scheduled_for,
    )
    row.enqueued_at = enqueued_at
    row.save()
    return row


@pytest.fixture
def relay_rows(frozen_now, db) -> dict[str, Notification]:
    now = frozen_now
    return {
        "never_handed_out": pending_row(scheduled_for=now, enqueued_at=None),
        "handed_out_long_ago": pending_row(
            scheduled_for=now - timedelta(minutes=10), enqueued_at=now - timedelta(minutes=10)
        ),
        "just_handed_out": pending_row(scheduled_for=now, enqueued_at=now),
        "future": pending_row(scheduled_for=now + timedelta(minutes=1), enqueued_at=None),
    }


def test_relay_hands_out_due_rows_not_recently_enqueued(relay_rows):
    handed_out = relay_pending()

    assert handed_out == 2
    statuses = {name: reloaded(row).status for name, row in relay_rows.items()}
    assert statuses == {
        "never_handed_out": Status.SENT,
        "handed_out_long_ago": Status.SENT,
        "just_handed_out": Status.PENDING,
        "future": Status.PENDING,
    }
    assert len(mail.outbox) == 2


def test_relay_hands_out_an_abandoned_claim(frozen_now, db):
    row = pending_row(scheduled_for=frozen_now, enqueued_at=frozen_now)
    Notification.objects.filter(pk=row.pk).update(
        status=Status.SENDING, claimed_until=frozen_now - timedelta(seconds=1)
    )

    assert relay_pending() == 1
    assert reloaded(row).status == Status.SENT


def test_relay_notifications_command_sends_due_rows_in_process(relay_rows):
    out = StringIO()

    call_command("relay_notifications", stdout=out)

    assert out.getvalue().strip() == "sent 2, retried 0, failed 0, dropped 0"
    assert reloaded(relay_rows["never_handed_out"]).status == Status.SENT
    assert reloaded(relay_rows["future"]).status == Status.PENDING
    assert len(mail.outbox) == 2


def test_the_delivery_task_returns_its_outcome(frozen_now, db):
    row = confirmation_row()

    assert deliver_notifications([row.pk]) == {"sent": 1, "retried": 0, "failed": 0, "dropped": 0}
    assert reloaded(row).sent_at == timezone.now()


# --- Privacy --------------------------------------------------------------------------------


def test_logs_hold_no_patient_name_email_or_phone(
    clinic, caplog, settings, django_capture_on_commit_callbacks
):
    secret = {
        "first_name": "Zéphyrine",
        "last_name": "Quibbleworth",
        "phone": "0611223344",
        "email": "zephyrine.quibbleworth@example.test",
    }
    patient = PatientFactory(user=UserFactory(email=secret["email"]), **secret)
    actor = make_actor(patient.user)
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1  # the SMS fails for good: its warning is logged too

    with CaptureQueriesContext(connection):  # SQL is logged as well, with its parameters
        with django_capture_on_commit_callbacks(execute=True):
            appointment = book_appointment(
                actor=actor,
                practitioner=clinic.practitioner,
                reason=clinic.reason,
                start=clinic.slot,
                patient=patient,
            )
        settings.SMS_BACKEND = backend_path(FailingSms)
        with django_capture_on_commit_callbacks(execute=True):
            cancel_appointment(actor=actor, appointment_id=appointment.pk)

    # Confirmation and cancellation to the patient, cancellation to the practitioner.
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [secret["email"], secret["email"], clinic.practitioner.user.email]
    )
    assert Notification.objects.filter(status=Status.FAILED, channel="sms").count() == 1
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    assert "failed after 1 attempts" in logged
    assert "INSERT INTO" in logged
    for value in secret.values():
        assert value not in logged
