import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: settings) -> None:  # type: ignore[valid-type]
    # Real hashers cost ~0.3 s a call by design; tests create many accounts.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


# --- A ready-to-book practice, at a fixed time ----------------------------------------------
# Monday 1 June 2026, 08:00 in Paris. Tests that need another moment travel themselves.
FROZEN_NOW = "2026-06-01T06:00:00+00:00"


@pytest.fixture
def frozen_now():
    import time_machine
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(FROZEN_NOW)
    with time_machine.travel(moment, tick=False):
        yield moment


@pytest.fixture
def clinic(db, frozen_now):
    """A practitioner open every day 08:00-18:00 (Europe/Paris) with a 30-minute reason, a patient
    with an account, and `slot`: tomorrow 09:00 local, free."""
    from datetime import datetime, time, timedelta
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from tests.factories import (
        PatientFactory,
        PractitionerFactory,
        VisitReasonFactory,
        WeeklyHoursFactory,
    )

    practitioner = PractitionerFactory(minimum_notice_minutes=60, cancellation_notice_hours=24)
    reason = VisitReasonFactory(practitioner=practitioner, duration_minutes=30)
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=time(8), end_time=time(18)
        )
    patient = PatientFactory()
    tz = ZoneInfo("Europe/Paris")
    tomorrow = frozen_now.astimezone(tz).date() + timedelta(days=1)
    slot = datetime.combine(tomorrow, time(9), tzinfo=tz)
    return SimpleNamespace(
        practitioner=practitioner, reason=reason, patient=patient, slot=slot, tz=tz
    )


@pytest.fixture(autouse=True)
def _messages_stay_in_memory(settings):  # type: ignore[no-untyped-def]
    """Emails (pytest-django's locmem backend) and SMS land in memory; Celery runs tasks in the
    test process. The worker tests (tests/notifications/test_worker.py) opt out of the latter."""
    from config.celery import app
    from notifications import sms

    settings.SMS_BACKEND = "notifications.sms.LocmemSmsBackend"
    sms.outbox.clear()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


# --- Staff sessions with a second factor ----------------------------------------------------
@pytest.fixture
def otp_login():
    """Log `user` into `client` as if they had passed the TOTP step: what every staff page needs.

    Returns the confirmed TOTP device, so a test can compute codes from its key.
    """
    from tests.otp import otp_login

    return otp_login


# --- The audit tables refuse TRUNCATE ---------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _flush_past_audit_triggers():
    """Transactional tests end with `flush`, a TRUNCATE of every table, which the audit log's
    triggers refuse (by design). The test database's superuser may switch triggers off for that
    one transaction; the application's role in production cannot."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else []

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture(autouse=True)
def _no_api_throttling(settings):  # type: ignore[no-untyped-def]
    """Every test client shares one IP and one cache: the REST API's per-client rates would make
    the suite's outcome depend on its order. tests/integrations/test_api_schema.py sets its own
    rate to test throttling."""
    settings.API_ANONYMOUS_RATE = None
    settings.API_USER_RATE = None
