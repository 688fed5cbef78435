"""purge_expired beyond the audit log: old notifications, expired sessions, inactive accounts
(warned, then erased). The audit part is in test_retention.py."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User, UserSession
from booking.models import Appointment
from notifications.models import Notification
from notifications.retention import purge_old_notifications
from patients.gdpr import purge_inactive_accounts
from patients.models import Patient
from tests.factories import AppointmentFactory, PatientFactory

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def now(db):
    with time_machine.travel(NOW, tick=False):
        yield NOW


def notification(status: str, *, age_days: int, key: str) -> Notification:
    row = Notification.objects.create(
        kind=Notification.Kind.SECURITY_ALERT,
        channel=Notification.Channel.EMAIL,
        recipient=Notification.Recipient.USER,
        status=status,
        idempotency_key=key,
    )
    # created_at is auto_now_add: moved back by a plain update.
    Notification.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(days=age_days)
    )
    return row


def run(**options) -> list[str]:
    out = StringIO()
    call_command("purge_expired", stdout=out, stderr=StringIO(), **options)
    return out.getvalue().splitlines()


def test_finished_notifications_older_than_the_retention_go_and_recent_ones_stay(now):
    old_sent = notification(Notification.Status.SENT, age_days=91, key="a")
    old_failed = notification(Notification.Status.FAILED, age_days=200, key="b")
    old_cancelled = notification(Notification.Status.CANCELLED, age_days=91, key="c")
    old_pending = notification(Notification.Status.PENDING, age_days=400, key="d")  # still owed
    recent_sent = notification(Notification.Status.SENT, age_days=89, key="e")

    assert purge_old_notifications() == 3

    kept = set(Notification.objects.values_list("pk", flat=True))
    assert kept == {old_pending.pk, recent_sent.pk}
    assert not kept & {old_sent.pk, old_failed.pk, old_cancelled.pk}


def test_the_command_prints_what_it_did_for_each_kind(now):
    notification(Notification.Status.SENT, age_days=120, key="a")
    notification(Notification.Status.SENT, age_days=10, key="b")
    UserSession.objects.create(
        session_key="x" * 32, session_data="", expire_date=NOW - timedelta(minutes=1)
    )
    UserSession.objects.create(
        session_key="y" * 32, session_data="", expire_date=NOW + timedelta(hours=1)
    )

    lines = run()

    assert lines[0].startswith("audit log: kept from ")
    assert lines[1].startswith("inactive accounts: erased 0, warned 0")
    assert lines[2:] == [
        "notifications: removed 1 sent, failed or cancelled messages older than 90 days",
        "sessions: removed 1 expired sessions",
    ]
    assert Notification.objects.count() == 1
    assert list(UserSession.objects.values_list("session_key", flat=True)) == ["y" * 32]


def test_even_with_nothing_to_do_every_kind_reports(now):
    lines = run()

    assert [line.split(":")[0] for line in lines] == [
        "audit log",
        "inactive accounts",
        "notifications",
        "sessions",
    ]
    assert lines[1].startswith("inactive accounts: erased 0, warned 0 (no login or appointment")


# --- Inactive accounts ------------------------------------------------------------------------


def dormant_patient(*, last_seen: datetime) -> Patient:
    with time_machine.travel(last_seen - timedelta(days=1), tick=False):
        patient = PatientFactory(first_name="Léontine", last_name="Dormeuil")
    User.objects.filter(pk=patient.user_id).update(last_login=last_seen)
    return patient


def test_an_inactive_account_is_warned_then_erased_30_days_later(now):
    patient = dormant_patient(last_seen=NOW - timedelta(days=3 * 365 - 20))
    active = dormant_patient(last_seen=NOW - timedelta(days=30))

    first = purge_inactive_accounts()

    assert (first.warned, first.erased) == (1, 0)
    [warning] = mail.outbox
    assert warning.to == [patient.user.email]
    assert "30" in warning.subject
    assert "/accounts/login/" in warning.body
    patient.refresh_from_db()
    assert patient.inactivity_warned_at == NOW

    assert purge_inactive_accounts() == first.__class__()  # warned once, not yet due

    with time_machine.travel(NOW + timedelta(days=31), tick=False):
        out = StringIO()
        call_command("purge_expired", stdout=out)

    assert "inactive accounts: erased 1, warned 0" in out.getvalue()
    patient.refresh_from_db()
    assert patient.erased_at is not None
    assert (patient.first_name, patient.email, patient.phone) == ("", "", "")
    assert not User.objects.get(pk=patient.user_id).is_active
    assert User.objects.get(pk=active.user_id).is_active
    assert len(mail.outbox) == 1


def test_a_login_after_the_warning_keeps_the_account(now):
    patient = dormant_patient(last_seen=NOW - timedelta(days=3 * 365))
    purge_inactive_accounts()
    User.objects.filter(pk=patient.user_id).update(last_login=NOW + timedelta(days=5))

    with time_machine.travel(NOW + timedelta(days=40), tick=False):
        result = purge_inactive_accounts()

    assert (result.warned, result.erased) == (0, 0)
    patient.refresh_from_db()
    assert patient.erased_at is None


def test_an_appointment_in_the_period_counts_as_activity(now):
    patient = dormant_patient(last_seen=NOW - timedelta(days=5 * 365))
    AppointmentFactory(
        patient=patient, start=NOW - timedelta(days=100), status=Appointment.Status.DONE
    )

    assert purge_inactive_accounts().warned == 0
    assert mail.outbox == []


def test_an_account_is_never_erased_without_a_warning_first(now):
    patient = dormant_patient(last_seen=NOW - timedelta(days=10 * 365))

    result = purge_inactive_accounts()

    assert (result.warned, result.erased) == (1, 0)
    patient.refresh_from_db()
    assert patient.erased_at is None
