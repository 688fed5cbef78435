"""Sessions: idle expiry by role, key rotation, the list of one's sessions and ending them."""

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone, translation

from accounts.models import User, UserSession
from accounts.sessions import ACTIVITY_RESOLUTION, session_handle
from accounts.user_agents import describe_user_agent
from tests.factories import PASSWORD, PatientFactory, PractitionerFactory, UserFactory

START = datetime.fromisoformat("2026-06-01T06:00:00+00:00")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ROOT = Path(__file__).resolve().parents[2]


def browser(user_agent: str = FIREFOX_LINUX, ip: str = "198.51.100.4") -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def patient_user(db) -> User:
    return PatientFactory().user


@pytest.fixture
def staff_user(db) -> User:
    return PractitionerFactory().user


def log_in(client: Client, user: User):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- Idle expiry ---------------------------------------------------------------------------


def test_staff_sessions_end_after_thirty_idle_minutes(staff_user, clock, otp_login):
    client = browser()
    otp_login(client, staff_user)

    clock.shift(timedelta(minutes=29))
    assert client.get("/accounts/security/").status_code == 200  # activity: expiry pushed back
    clock.shift(timedelta(minutes=29))
    assert client.get("/accounts/security/").status_code == 200
    clock.shift(timedelta(minutes=30, seconds=1))

    response = client.get("/accounts/security/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not UserSession.objects.filter(expire_date__gt=timezone.now()).exists()


def test_patient_sessions_last_a_day_of_inactivity(patient_user, clock):
    client = browser()
    log_in(client, patient_user)

    clock.shift(timedelta(hours=23))
    assert client.get("/accounts/security/").status_code == 200
    clock.shift(timedelta(hours=23, minutes=59))
    assert client.get("/accounts/security/").status_code == 200
    clock.shift(timedelta(hours=24, seconds=1))

    assert client.get("/accounts/security/")["Location"].startswith("/accounts/login/")


def test_the_session_cookie_and_row_carry_the_idle_timeout_of_the_role(
    staff_user, patient_user, clock, otp_login
):
    staff, patient = browser(), browser()
    otp_login(staff, staff_user)
    log_in(patient, patient_user)
    clock.shift(ACTIVITY_RESOLUTION)

    staff_response = staff.get("/accounts/security/")
    patient_response = patient.get("/accounts/security/")

    assert staff_response.cookies["sessionid"]["max-age"] == 1800
    assert patient_response.cookies["sessionid"]["max-age"] == 86400
    expiry = dict(UserSession.objects.values_list("user_id", "expire_date"))
    assert expiry[staff_user.pk] == timezone.now() + timedelta(seconds=1800)
    assert expiry[patient_user.pk] == timezone.now() + timedelta(seconds=86400)


def test_activity_is_written_at_most_once_a_minute(patient_user, clock, django_assert_num_queries):
    client = browser()
    log_in(client, patient_user)
    client.get("/accounts/security/")
    clock.shift(timedelta(seconds=30))

    # Session, user, the page's own reads (devices, codes, sessions): no session write.
    with django_assert_num_queries(4):
        client.get("/accounts/security/")
    clock.shift(timedelta(seconds=31))
    # The same, plus the write pushing expiry back (an UPDATE, in a savepoint inside the test's
    # transaction).
    with django_assert_num_queries(7):
        client.get("/accounts/security/")

    row = UserSession.objects.get(user=patient_user)
    assert row.last_activity == timezone.now()


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("SESSION_IDLE_TIMEOUT_STAFF", "600", "SESSION_IDLE_TIMEOUT_STAFF"),
        ("SESSION_IDLE_TIMEOUT_PATIENT", "3600", "SESSION_IDLE_TIMEOUT_PATIENT"),
    ],
)
def test_idle_timeouts_come_from_the_environment(tmp_path, variable, value, setting):
    env = {**os.environ, "CRENEAU_VAR_DIR": str(tmp_path), "DEBUG": "on", variable: value}
    code = f"from config import settings; print(settings.{setting})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == value


def test_default_idle_timeouts():
    assert django_settings.SESSION_IDLE_TIMEOUT_STAFF == 1800
    assert django_settings.SESSION_IDLE_TIMEOUT_PATIENT == 86400


# --- Key rotation ----------------------------------------------------------------------------


def test_the_session_key_rotates_at_login(patient_user, clock):
    client = browser()
    anonymous = client.session
    anonymous["seen"] = True
    anonymous.save()
    client.cookies["sessionid"] = anonymous.session_key

    log_in(client, patient_user)

    assert client.cookies["sessionid"].value != anonymous.session_key
    assert not UserSession.objects.filter(session_key=anonymous.session_key).exists()
    assert client.session["seen"] is True  # the data follows the new key
    assert signed_in(client)


def test_the_session_key_rotates_again_at_the_second_factor(staff_user, clock):
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=staff_user, name="authenticator", confirmed=True)
    client = browser()
    log_in(client, staff_user)
    after_password = client.cookies["sessionid"].value
    totp = TOTP(device.bin_key)

    client.post("/accounts/two-factor/verify/", {"code": f"{totp.token():06d}"})

    assert client.cookies["sessionid"].value != after_password
    assert not UserSession.objects.filter(session_key=after_password).exists()


# --- Listing and ending sessions -------------------------------------------------------------


def test_the_security_page_lists_my_sessions_with_device_ip_and_activity(patient_user, clock):
    laptop, phone = browser(), browser(SAFARI_IPHONE, "203.0.113.9")
    log_in(laptop, patient_user)
    clock.shift(timedelta(minutes=5))
    log_in(phone, patient_user)
    other = browser()
    log_in(other, UserFactory())

    page = laptop.get("/accounts/security/")

    content = page.content.decode()
    sessions = page.context["sessions"]
    assert [(s.device, s.ip, s.is_current) for s in sessions] == [
        ("Firefox on Linux", "198.51.100.4", True),
        ("Safari on iOS", "203.0.113.9", False),
    ]
    assert "This session" in content
    assert "Safari on iOS" in content
    assert laptop.cookies["sessionid"].value not in content  # keys never leave the cookie
    assert phone.cookies["sessionid"].value not in content


def test_ending_another_session_logs_it_out(patient_user, clock):
    laptop, phone = browser(), browser(SAFARI_IPHONE)
    log_in(laptop, patient_user)
    log_in(phone, patient_user)
    phone_handle = session_handle(phone.cookies["sessionid"].value)

    response = laptop.post(f"/accounts/security/sessions/{phone_handle}/end/")

    assert response["Location"] == "/accounts/security/"
    assert phone.get("/me/appointments/")["Location"].startswith("/accounts/login/")
    assert not signed_in(phone)
    assert signed_in(laptop)
    assert laptop.get("/me/appointments/").status_code == 200


def test_one_cannot_end_someone_elses_session(patient_user, clock):
    mine, theirs = browser(), browser()
    log_in(mine, patient_user)
    log_in(theirs, UserFactory())
    their_handle = session_handle(theirs.cookies["sessionid"].value)

    mine.post(f"/accounts/security/sessions/{their_handle}/end/")

    assert theirs.get("/me/appointments/").status_code == 200


def test_ending_all_other_sessions_keeps_this_one(patient_user, clock):
    here, *elsewhere = [browser() for _ in range(3)]
    for client in (here, *elsewhere):
        log_in(client, patient_user)

    here.post("/accounts/security/sessions/end-others/")

    assert signed_in(here)
    assert [signed_in(client) for client in elsewhere] == [False, False]
    assert UserSession.objects.filter(user=patient_user).count() == 1


def test_ending_sessions_needs_a_post(patient_user, clock):
    client = browser()
    log_in(client, patient_user)

    assert client.get("/accounts/security/sessions/end-others/").status_code == 405


def test_changing_the_password_needs_the_current_one_and_logs_out_other_sessions(
    patient_user, clock
):
    here, elsewhere = browser(), browser()
    log_in(here, patient_user)
    log_in(elsewhere, patient_user)
    new = "Quiet-Meadow-4412!"

    refused = here.post(
        "/accounts/security/password/",
        {"password": "not it", "new_password1": new, "new_password2": new},
    )
    assert refused.status_code == 200
    assert signed_in(elsewhere)

    response = here.post(
        "/accounts/security/password/",
        {"password": PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert response["Location"] == "/accounts/security/"
    patient_user.refresh_from_db()
    assert patient_user.check_password(new)
    assert signed_in(here)
    assert here.get("/me/appointments/").status_code == 200
    assert not signed_in(elsewhere)
    assert UserSession.objects.filter(user=patient_user).count() == 1


def test_a_password_reset_ends_every_session(
    patient_user, clock, django_capture_on_commit_callbacks
):
    from django.core import mail

    signed_in_elsewhere = browser()
    log_in(signed_in_elsewhere, patient_user)
    client = browser()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password-reset/", {"email": patient_user.email})
    link = re.search(r"/accounts/reset/\S+/\S+/", str(mail.outbox[-1].body))
    assert link
    form = client.get(link.group(0), follow=True)
    new = "Quiet-Meadow-4412!"

    client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})

    assert not signed_in(client)
    assert not signed_in(signed_in_elsewhere)
    assert not UserSession.objects.filter(user=patient_user).exists()


# --- What the session table holds ----------------------------------------------------------


def test_the_session_row_names_its_user_and_client_but_no_personal_data(patient_user, clock):
    client = browser()
    log_in(client, patient_user)

    row = UserSession.objects.get(session_key=client.cookies["sessionid"].value)

    assert (row.user_id, row.ip, row.user_agent) == (patient_user.pk, "198.51.100.4", FIREFOX_LINUX)
    assert row.created_at == row.last_activity == timezone.now()
    assert patient_user.email not in row.session_data
    assert patient_user.email not in repr(row.get_decoded())


def test_logging_out_deletes_the_session_row(patient_user, clock):
    client = browser()
    log_in(client, patient_user)

    client.post("/accounts/logout/")

    assert not UserSession.objects.exists()


def test_sessions_of_a_deleted_account_go_with_it(patient_user, clock):
    client = browser()
    log_in(client, patient_user)

    patient_user.delete()

    assert not UserSession.objects.exists()


@pytest.mark.parametrize(
    ("user_agent", "described"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (SAFARI_IPHONE, "Safari on iOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/126.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_user_agents_are_described_in_words(user_agent, described):
    with translation.override("en"):
        assert describe_user_agent(user_agent) == described


def test_user_agent_descriptions_are_translated():
    with translation.override("fr"):
        assert describe_user_agent(FIREFOX_LINUX) == "Firefox sous Linux"
        assert describe_user_agent("") == "Appareil inconnu"


def test_expired_session_rows_are_cleared_by_the_hourly_task(patient_user, staff_user, clock):
    from accounts.tasks import clear_expired_sessions

    log_in(browser(), patient_user)
    log_in(browser(), staff_user)
    clock.shift(timedelta(minutes=31))

    assert clear_expired_sessions() == 1
    assert list(UserSession.objects.values_list("user_id", flat=True)) == [patient_user.pk]
    assert "clear-expired-sessions" in django_settings.CELERY_BEAT_SCHEDULE


def test_the_async_session_api_fills_the_same_columns(patient_user, clock):
    from asgiref.sync import async_to_sync
    from django.contrib.auth import SESSION_KEY

    from accounts.sessions import SessionStore

    store = SessionStore()
    store.bind_client(ip="192.0.2.1", user_agent=FIREFOX_LINUX)
    store[SESSION_KEY] = str(patient_user.pk)

    async_to_sync(store.asave)()

    row = UserSession.objects.get(session_key=store.session_key)
    assert (row.user_id, row.ip, row.user_agent) == (patient_user.pk, "192.0.2.1", FIREFOX_LINUX)
    assert row.expire_date == timezone.now() + timedelta(days=1)
