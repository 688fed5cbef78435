"""The outbox: which rows a booking, a cancellation and a reschedule write, in the transaction of
the change, and how after commit they are delivered exactly once. The `clinic` fixture is open
every day 08:00-18:00 in Paris; it is Monday 1 June 2026, 08:00 there, `clinic.slot` is tomorrow
09:00. Celery runs eagerly: the after-commit enqueue delivers in the test process."""

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import mail
from django.db import transaction

from booking.errors import SlotUnavailable
from booking.models import Appointment
from booking.next_slots import refresh_after_commit
from booking.services import book_appointment, cancel_appointment, reschedule_appointment
from notifications import sms
from notifications.delivery import deliver
from notifications.models import Notification
from notifications.services import appointment_messages, queue
from notifications.tasks import deliver_notifications
from tests.factories import AppointmentFactory, PatientFactory, make_actor, secretary_of

Kind = Notification.Kind
Status = Notification.Status


def book(clinic: SimpleNamespace, **overrides: Any) -> Appointment:
    arguments: dict[str, Any] = {
        "actor": make_actor(clinic.patient.user),
        "practitioner": clinic.practitioner,
        "reason": clinic.reason,
        "start": clinic.slot,
        "patient": clinic.patient,
    }
    arguments.update(overrides)
    return book_appointment(**arguments)


def rows(**filters: Any) -> list[tuple[str, str, str]]:
    return sorted(
        Notification.objects.filter(**filters).values_list("kind", "channel", "recipient")
    )


def booked_and_delivered(clinic: SimpleNamespace, capture: Any) -> Appointment:
    with capture(execute=True):
        appointment = book(clinic)
    mail.outbox.clear()
    sms.outbox.clear()
    return appointment


# --- Booking --------------------------------------------------------------------------------


def test_booking_writes_one_email_confirmation_for_a_patient_with_email(clinic):
    appointment = book(clinic)

    assert rows(appointment=appointment, kind=Kind.CONFIRMATION) == [
        ("confirmation", "email", "patient")
    ]
    assert Notification.objects.get(kind=Kind.CONFIRMATION).status == Status.PENDING


def test_booking_writes_an_sms_confirmation_for_a_patient_without_email(clinic):
    patient = PatientFactory(user=None, email="")
    secretary = secretary_of(clinic.practitioner)

    appointment = book(clinic, actor=make_actor(secretary), patient=patient)

    assert rows(appointment=appointment, kind=Kind.CONFIRMATION) == [
        ("confirmation", "sms", "patient")
    ]


def test_confirmation_is_delivered_once_after_commit(clinic, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        appointment = book(clinic)
        # Nothing leaves before the booking commits.
        assert mail.outbox == []

    # One delivery; the other callback refreshes the practitioner's next free slots.
    refreshes = {refresh_after_commit.__module__}
    assert len([c for c in callbacks if getattr(c, "func", c).__module__ not in refreshes]) == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [clinic.patient.email]
    confirmation = Notification.objects.get(appointment=appointment, kind=Kind.CONFIRMATION)
    assert confirmation.status == Status.SENT
    assert confirmation.attempts == 1
    assert confirmation.sent_at is not None


def test_delivering_the_same_row_again_sends_nothing_more(
    clinic, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        book(clinic)
    confirmation = Notification.objects.get(kind=Kind.CONFIRMATION)

    outcome = deliver([confirmation.pk])
    deliver_notifications([confirmation.pk])

    assert outcome.as_dict() == {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
    assert len(mail.outbox) == 1
    confirmation.refresh_from_db()
    assert (confirmation.status, confirmation.attempts) == (Status.SENT, 1)


def test_a_failed_booking_writes_no_notification(clinic, django_capture_on_commit_callbacks):
    book(clinic)
    before = Notification.objects.count()
    other = PatientFactory()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(SlotUnavailable),
    ):
        book(clinic, actor=make_actor(other.user), patient=other)

    assert Notification.objects.count() == before
    assert callbacks == []


def test_outbox_rows_roll_back_with_a_booking_that_fails_after_writing_them(
    clinic, monkeypatch, django_capture_on_commit_callbacks
):
    def queue_then_fail(notifications: list[Notification]) -> list[Notification]:
        queue(notifications)
        assert Notification.objects.exists()  # written, in the booking's transaction
        raise RuntimeError("the booking fails after its outbox rows were written")

    monkeypatch.setattr("booking.services.queue", queue_then_fail)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        book(clinic)

    assert not Appointment.objects.exists()
    assert not Notification.objects.exists()
    assert callbacks == []
    assert mail.outbox == []


def test_queueing_the_same_rows_twice_writes_them_once(db, django_capture_on_commit_callbacks):
    appointment = AppointmentFactory()

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            queue(appointment_messages(kind=Kind.CONFIRMATION, appointment=appointment))
            queue(appointment_messages(kind=Kind.CONFIRMATION, appointment=appointment))
        queue(appointment_messages(kind=Kind.CONFIRMATION, appointment=appointment))

    assert Notification.objects.filter(kind=Kind.CONFIRMATION).count() == 1
    assert len(mail.outbox) == 1


# --- Cancelling -----------------------------------------------------------------------------


def test_patient_cancelling_tells_the_patient_by_email_and_sms_and_the_practitioner_by_email(
    clinic, django_capture_on_commit_callbacks
):
    appointment = booked_and_delivered(clinic, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        cancel_appointment(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)

    assert rows(kind=Kind.CANCELLATION) == [
        ("cancellation", "email", "patient"),
        ("cancellation", "email", "practitioner"),
        ("cancellation", "sms", "patient"),
    ]
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [clinic.patient.email, clinic.practitioner.user.email]
    )
    assert [message.to for message in sms.outbox] == [clinic.patient.phone]
    assert set(Notification.objects.filter(kind=Kind.CANCELLATION).values_list("status")) == {
        (Status.SENT,)
    }


def test_practice_cancelling_tells_the_patient_but_not_the_practitioner(
    clinic, django_capture_on_commit_callbacks
):
    appointment = booked_and_delivered(clinic, django_capture_on_commit_callbacks)
    secretary = secretary_of(clinic.practitioner)

    with django_capture_on_commit_callbacks(execute=True):
        cancel_appointment(actor=make_actor(secretary), appointment_id=appointment.pk)

    assert rows(kind=Kind.CANCELLATION) == [
        ("cancellation", "email", "patient"),
        ("cancellation", "sms", "patient"),
    ]
    assert [message.to for message in mail.outbox] == [[clinic.patient.email]]
    assert len(sms.outbox) == 1


def test_cancelling_cancels_the_pending_reminders(clinic, django_capture_on_commit_callbacks):
    appointment = booked_and_delivered(clinic, django_capture_on_commit_callbacks)
    assert Notification.objects.filter(kind=Kind.REMINDER, status=Status.PENDING).count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        cancel_appointment(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)

    reminders = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    assert set(reminders.values_list("status", flat=True)) == {Status.CANCELLED}


# --- Rescheduling ---------------------------------------------------------------------------


def test_rescheduling_sends_one_message_and_moves_the_reminders(
    clinic, django_capture_on_commit_callbacks
):
    old = booked_and_delivered(clinic, django_capture_on_commit_callbacks)
    new_start = clinic.slot + timedelta(hours=2)

    with django_capture_on_commit_callbacks(execute=True):
        new = reschedule_appointment(
            actor=make_actor(clinic.patient.user), appointment_id=old.pk, start=new_start
        )

    # The patient moved it: they are told, and so is the practitioner, whose agenda changed.
    assert sorted(rows(kind=Kind.RESCHEDULE)) == [
        ("reschedule", "email", "patient"),
        ("reschedule", "email", "practitioner"),
    ]
    assert {n.appointment for n in Notification.objects.filter(kind=Kind.RESCHEDULE)} == {new}
    assert len(mail.outbox) == 2
    assert sms.outbox == []
    old_reminders = Notification.objects.filter(appointment=old, kind=Kind.REMINDER)
    assert set(old_reminders.values_list("status", flat=True)) == {Status.CANCELLED}
    new_reminders = Notification.objects.filter(appointment=new, kind=Kind.REMINDER)
    assert sorted(new_reminders.values_list("scheduled_for", "status")) == [
        (new_start - timedelta(hours=24), Status.PENDING),
        (new_start - timedelta(hours=2), Status.PENDING),
    ]
    assert not Notification.objects.filter(kind=Kind.CANCELLATION).exists()


def test_a_move_by_the_practice_reaches_the_patient_on_every_channel(
    clinic, django_capture_on_commit_callbacks
):
    old = booked_and_delivered(clinic, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        reschedule_appointment(
            actor=make_actor(clinic.practitioner.user),
            appointment_id=old.pk,
            start=clinic.slot + timedelta(hours=2),
        )

    assert sorted(rows(kind=Kind.RESCHEDULE)) == [
        ("reschedule", "email", "patient"),
        ("reschedule", "sms", "patient"),
    ]
