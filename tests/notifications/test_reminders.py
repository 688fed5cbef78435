"""Reminders: when they are due (whole days on the practice's wall clock, across DST changes),
which a booking schedules, and that the relay sends each once, when due and not before. The
`clinic` fixture is open every day 08:00-18:00 in Paris; it is Monday 1 June 2026, 08:00 there,
and `clinic.slot` is tomorrow 09:00. Patients have an email and a phone: reminders go by SMS."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from booking.models import Appointment
from booking.services import book_appointment, cancel_appointment
from notifications import sms
from notifications.models import Notification
from notifications.services import reminder_due, reminders_for
from notifications.tasks import relay_pending
from tests.factories import AppointmentFactory, PatientFactory, make_actor

PARIS = ZoneInfo("Europe/Paris")
Status = Notification.Status


def paris(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=PARIS)


def book(clinic: SimpleNamespace, start: datetime, capture: Any) -> Appointment:
    with capture(execute=True):
        appointment = book_appointment(
            actor=make_actor(clinic.patient.user),
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=start,
            patient=clinic.patient,
        )
    mail.outbox.clear()  # the confirmation
    sms.outbox.clear()
    return appointment


def reminders(appointment: Appointment) -> list[tuple[datetime, str]]:
    return list(
        Notification.objects.filter(appointment=appointment, kind=Notification.Kind.REMINDER)
        .order_by("scheduled_for")
        .values_list("scheduled_for", "channel")
    )


def relay_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return relay_pending()


# --- When a reminder is due -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        pytest.param(paris(2026, 6, 2, 9), 24, paris(2026, 6, 1, 9), id="24h"),
        pytest.param(paris(2026, 6, 2, 9), 2, paris(2026, 6, 2, 7), id="2h"),
        pytest.param(paris(2026, 6, 3, 9), 48, paris(2026, 6, 1, 9), id="48h"),
        # Clocks go forward on Sunday 29 March 2026 at 02:00.
        pytest.param(paris(2026, 3, 30, 9), 24, paris(2026, 3, 29, 9), id="monday-after-spring"),
        pytest.param(paris(2026, 3, 30, 9), 2, paris(2026, 3, 30, 7), id="2h-after-spring"),
        pytest.param(paris(2026, 3, 29, 10), 24, paris(2026, 3, 28, 10), id="sunday-of-spring"),
        pytest.param(paris(2026, 3, 31, 9), 48, paris(2026, 3, 29, 9), id="48h-over-spring"),
        # Clocks go back on Sunday 25 October 2026 at 03:00.
        pytest.param(paris(2026, 10, 26, 9), 24, paris(2026, 10, 25, 9), id="monday-after-fall"),
        pytest.param(paris(2026, 10, 26, 9), 2, paris(2026, 10, 26, 7), id="2h-after-fall"),
        pytest.param(paris(2026, 10, 25, 10), 24, paris(2026, 10, 24, 10), id="sunday-of-fall"),
    ],
)
@pytest.mark.parametrize("zone", [UTC, PARIS], ids=["start-in-utc", "start-in-paris"])
def test_a_reminder_is_due_at_the_same_wall_clock_time_days_before(start, hours, due, zone):
    result = reminder_due(start.astimezone(zone), hours=hours, tz=PARIS)

    assert result == due
    assert result.astimezone(PARIS).time() == due.time()


def test_the_day_before_reminder_of_monday_30_march_is_sunday_9_local_7_utc():
    start = paris(2026, 3, 30, 9).astimezone(UTC)

    day_before = reminder_due(start, hours=24, tz=PARIS)
    two_hours = reminder_due(start, hours=2, tz=PARIS)

    assert day_before == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert day_before.astimezone(PARIS).replace(tzinfo=None) == datetime(2026, 3, 29, 9)
    assert two_hours.astimezone(PARIS).replace(tzinfo=None) == datetime(2026, 3, 30, 7)


def test_days_over_a_dst_change_are_23_or_25_hours():
    spring = paris(2026, 3, 29, 10).astimezone(UTC)
    fall = paris(2026, 10, 25, 10).astimezone(UTC)

    assert spring - reminder_due(spring, hours=24, tz=PARIS) == timedelta(hours=23)
    assert fall - reminder_due(fall, hours=24, tz=PARIS) == timedelta(hours=25)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # 04:00 on the morning clocks go forward: two hours earlier is 01:00 (02:00 never was).
        pytest.param(paris(2026, 3, 29, 4), 2, paris(2026, 3, 29, 1), id="2h-over-spring"),
        pytest.param(paris(2026, 3, 29, 10), 12, paris(2026, 3, 28, 21), id="12h-over-spring"),
        pytest.param(paris(2026, 10, 25, 10), 12, paris(2026, 10, 24, 23), id="12h-over-fall"),
    ],
)
@pytest.mark.parametrize("zone", [UTC, PARIS], ids=["start-in-utc", "start-in-paris"])
def test_hours_that_are_not_whole_days_count_elapsed_time_over_the_change(start, hours, due, zone):
    result = reminder_due(start.astimezone(zone), hours=hours, tz=PARIS)

    assert result == due
    assert start.astimezone(UTC) - result.astimezone(UTC) == timedelta(hours=hours)


# --- What a booking schedules ---------------------------------------------------------------


def test_booking_schedules_sms_reminders_24h_and_2h_before(
    clinic, django_capture_on_commit_callbacks
):
    appointment = book(clinic, clinic.slot, django_capture_on_commit_callbacks)

    assert reminders(appointment) == [
        (paris(2026, 6, 1, 9), Notification.Channel.SMS),
        (paris(2026, 6, 2, 7), Notification.Channel.SMS),
    ]
    assert sms.outbox == []  # not due yet


def test_a_patient_without_a_phone_is_reminded_by_email(clinic):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        patient=PatientFactory(phone=""),
        start=clinic.slot,
    )

    assert [row.channel for row in reminders_for(appointment=appointment)] == ["email", "email"]


def test_a_booking_less_than_2_hours_ahead_schedules_no_reminder(
    clinic, django_capture_on_commit_callbacks
):
    in_90_minutes = paris(2026, 6, 1, 9, 30)

    appointment = book(clinic, in_90_minutes, django_capture_on_commit_callbacks)

    assert reminders(appointment) == []


def test_a_booking_for_later_today_schedules_only_the_2h_reminder(
    clinic, django_capture_on_commit_callbacks
):
    appointment = book(clinic, paris(2026, 6, 1, 11), django_capture_on_commit_callbacks)

    assert reminders(appointment) == [(paris(2026, 6, 1, 9), Notification.Channel.SMS)]


def test_no_reminder_when_the_practitioner_turned_them_off(
    clinic, django_capture_on_commit_callbacks
):
    clinic.practitioner.reminders_enabled = False
    clinic.practitioner.save(update_fields=["reminders_enabled"])

    appointment = book(clinic, clinic.slot, django_capture_on_commit_callbacks)

    assert reminders(appointment) == []


def test_a_practitioner_may_choose_one_reminder_48h_before(
    clinic, django_capture_on_commit_callbacks
):
    clinic.practitioner.reminder_hours = [48]
    clinic.practitioner.save(update_fields=["reminder_hours"])
    thursday_9 = clinic.slot + timedelta(days=2)

    appointment = book(clinic, thursday_9, django_capture_on_commit_callbacks)

    assert reminders(appointment) == [(paris(2026, 6, 2, 9), Notification.Channel.SMS)]


# --- Sent once, when due --------------------------------------------------------------------


def test_the_relay_sends_a_reminder_when_due_and_not_before(
    clinic, django_capture_on_commit_callbacks
):
    appointment = book(clinic, clinic.slot, django_capture_on_commit_callbacks)
    due = paris(2026, 6, 1, 9)

    assert relay_at(due - timedelta(seconds=1)) == 0
    assert sms.outbox == []
    assert relay_at(due) == 1
    assert [message.to for message in sms.outbox] == [clinic.patient.phone]
    assert relay_at(due + timedelta(minutes=1)) == 0
    assert relay_at(due + timedelta(minutes=10)) == 0
    assert len(sms.outbox) == 1
    sent = Notification.objects.get(appointment=appointment, scheduled_for=due)
    assert (sent.status, sent.sent_at) == (Status.SENT, due)


@pytest.mark.parametrize(
    ("today", "start", "day_before", "two_hours_before"),
    [
        pytest.param(
            paris(2026, 3, 25, 12),
            paris(2026, 3, 30, 9),
            datetime(2026, 3, 29, 7, tzinfo=UTC),  # Sunday 09:00, summer time
            datetime(2026, 3, 30, 5, tzinfo=UTC),  # Monday 07:00
            id="spring",
        ),
        pytest.param(
            paris(2026, 10, 21, 12),
            paris(2026, 10, 26, 9),
            datetime(2026, 10, 25, 8, tzinfo=UTC),  # Sunday 09:00, winter time
            datetime(2026, 10, 26, 6, tzinfo=UTC),  # Monday 07:00
            id="fall",
        ),
    ],
)
def test_reminders_across_a_dst_change_go_out_at_local_time_once(
    clinic, django_capture_on_commit_callbacks, today, start, day_before, two_hours_before
):
    with time_machine.travel(today, tick=False):
        appointment = book(clinic, start, django_capture_on_commit_callbacks)

    assert [due for due, _channel in reminders(appointment)] == [day_before, two_hours_before]
    for due in (day_before, two_hours_before):
        sent_before = len(sms.outbox)
        assert relay_at(due - timedelta(minutes=1)) == 0
        assert relay_at(due) == 1
        assert relay_at(due + timedelta(minutes=5)) == 0
        assert len(sms.outbox) == sent_before + 1
    assert [message.to for message in sms.outbox] == [clinic.patient.phone] * 2
    assert set(
        Notification.objects.filter(appointment=appointment, kind="reminder").values_list(
            "status", flat=True
        )
    ) == {Status.SENT}


def test_a_reminder_is_not_sent_after_the_appointment_was_cancelled(
    clinic, django_capture_on_commit_callbacks
):
    appointment = book(clinic, clinic.slot, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_appointment(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)
    sms.outbox.clear()

    assert relay_at(paris(2026, 6, 2, 8)) == 0
    assert sms.outbox == []
