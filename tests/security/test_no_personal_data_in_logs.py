"""No name, email or phone in any log line (DESIGN invariant 5), over a whole patient's cycle:
sign up, confirm, a failed and a good login, book, cancel, book again, get reminded, with every
logger at DEBUG, SQL logging on, and the messages delivered (locmem email and SMS)."""

import logging
import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.core import mail
from django.db import connection

from accounts.crypto import blind_index
from booking.models import Appointment
from notifications import sms
from notifications.tasks import run_relay_in_process
from patients.models import Patient

FIRST_NAME = "Eulalie"
LAST_NAME = "Marchetti-Vauquelin"
EMAIL = "eulalie.marchetti@example.test"
PHONE = "06 71 42 58 93"
PASSWORD = "a long and unguessable passphrase 42"
NEEDLES = [
    FIRST_NAME,
    LAST_NAME,
    "Marchetti",
    EMAIL,
    "eulalie.marchetti",
    PHONE,
    "0671425893",
    "+33671425893",
    "671425893",
]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Signup and login rate limits count in the cache: this test's own, empty, even when the
    suite runs against Redis (as tests/accounts/conftest.py does)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"log-capture-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def every_log_line(caplog):
    """Every logger at DEBUG and reaching caplog (also those that do not propagate), and the SQL
    each query runs, with its parameters.

    The handlers' filters are lifted meanwhile: the redaction filter (config.security) is
    defense in depth, and rewrites records in place before caplog's handler sees them. What is
    checked here is that the code itself never logs personal data."""
    lifted = [(handler, handler.filters) for handler in logging.root.handlers]
    for handler, _filters in lifted:
        handler.filters = []
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).removeHandler(caplog.handler)
    for handler, filters in lifted:
        handler.filters = filters


def _text(caplog) -> str:
    lines = [caplog.text]
    for record in caplog.records:
        lines += [record.getMessage(), record.exc_text or "", repr(record.args)]
    return "\n".join(lines)


def _book(client, clinic, start, capture) -> Appointment:
    start_text = quote(start.isoformat())
    url = f"/book/{clinic.practitioner.slug}/?reason={clinic.reason.pk}&start={start_text}"
    with capture(execute=True):
        response = client.post(url, {"for_whom": "me"})
    assert response.status_code == 302, response.status_code
    return Appointment.objects.filter(start=start).get()


def test_a_full_cycle_logs_no_name_email_or_phone(
    client, clinic, every_log_line, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    signup = {
        "email": EMAIL,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "first_name": FIRST_NAME,
        "last_name": LAST_NAME,
        "birth_date": "1984-09-23",
        "phone": PHONE,
    }
    with capture(execute=True):
        assert client.post("/accounts/signup/", signup).status_code == 302
    link = re.search(r"/accounts/verify/[^/\s]+/", mail.outbox[-1].body)
    assert link is not None
    with capture(execute=True):
        assert client.get(link.group(0)).status_code == 302
    client.post("/accounts/logout/")
    refused = client.post("/accounts/login/", {"username": EMAIL, "password": "wrong " + PASSWORD})
    assert refused.status_code == 200
    with capture(execute=True):
        assert (
            client.post("/accounts/login/", {"username": EMAIL, "password": PASSWORD}).status_code
            == 302
        )
    patient = Patient.objects.get(email_index=blind_index(EMAIL, kind="email"))

    first = _book(client, clinic, clinic.slot, capture)
    with capture(execute=True):
        cancelled = client.post(f"/api/v1/appointments/{first.pk}/cancel/")
    assert cancelled.status_code == 200
    second = _book(client, clinic, clinic.slot + timedelta(days=1), capture)
    with time_machine.travel(second.start - timedelta(hours=2), tick=False):
        run_relay_in_process()

    assert first.patient_id == second.patient_id == patient.pk
    sent = [m.body for m in mail.outbox] + [m.body for m in sms.outbox]
    assert len(mail.outbox) >= 3  # verification, confirmations, cancellation
    assert sms.outbox  # the reminder, by SMS
    assert any(r.levelname == "DEBUG" for r in every_log_line.records)
    assert any("SELECT" in r.getMessage() for r in every_log_line.records)  # SQL was logged
    assert sent
    logged = _text(every_log_line).casefold()
    leaks = [needle for needle in NEEDLES if needle.casefold() in logged]
    assert leaks == []
