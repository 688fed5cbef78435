"""Two-factor login (django-otp): enrolment, verification, backup codes, replay, throttling,
lockout, re-authentication for sensitive changes, and password reset that never bypasses it.

The tests drive the real pages with the Django test client and compute TOTP codes from the
device key, at instants they control with time_machine."""

import re
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, SecondFactorLock, User
from audit.models import AccessEvent, Action
from tests.factories import PASSWORD, PatientFactory, PractitionerFactory, UserFactory

START = datetime.fromisoformat("2026-06-01T06:00:00+00:00")
SETUP = "/accounts/two-factor/setup/"
VERIFY = "/accounts/two-factor/verify/"


@pytest.fixture
def client(client):
    """English pages, so assertions read the source strings whatever the catalogs hold."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def another_client() -> Client:
    """A second browser."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def practitioner(db) -> User:
    return PractitionerFactory(user__email="dr.martin@example.test").user


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def log_in(client, user: User, **extra):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": user.email, "password": PASSWORD}, **extra)


def enrol(client, user: User) -> tuple[TOTPDevice, list[str]]:  # type: ignore[no-untyped-def]
    """First login of a staff account up to its backup codes: (device, backup codes)."""
    assert log_in(client, user)["Location"] == SETUP
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page = client.post(SETUP, {"code": code_for(device)})
    assert page.status_code == 200, page.content
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    device.refresh_from_db()
    return device, codes


def denials() -> list[tuple[int | None, int | None, str]]:
    return list(
        AccessEvent.objects.filter(action=Action.DENIED)
        .order_by("id")
        .values_list("appointment_id", "actor_user_id", "detail")
    )


def is_two_factor_page(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/")


# --- Enrolment ---------------------------------------------------------------------------------


def test_staff_first_login_enrols_totp_with_a_local_qr_code_then_shows_backup_codes(
    client, practitioner, clock
):
    response = log_in(client, practitioner)
    assert response.status_code == 302
    assert response["Location"] == SETUP
    assert is_two_factor_page(client.get("/agenda/"))

    page = client.get(SETUP)
    content = page.content.decode()
    device = TOTPDevice.objects.get(user=practitioner, confirmed=False)
    assert page.status_code == 200
    assert "<svg" in content  # drawn on our server, inline
    assert "<img" not in content.split('class="qr-code"')[1].split("</figure>")[0]
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', content)
    assert secret
    assert secret.group(1).replace(" ", "") in device.config_url
    assert page["Cache-Control"].startswith("max-age=0")
    key_before = client.session.session_key

    done = client.post(SETUP, {"code": code_for(device)})

    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert done.status_code == 200
    assert len(codes) == len(set(codes)) == 10
    assert sorted(codes) == sorted(
        StaticToken.objects.filter(device__user=practitioner).values_list("token", flat=True)
    )
    device.refresh_from_db()
    practitioner.refresh_from_db()
    assert device.confirmed
    assert practitioner.two_factor_enabled
    assert client.session.session_key != key_before  # the OTP step rotates the key
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    agenda = client.get("/agenda/")
    assert not is_two_factor_page(agenda)
    assert agenda.status_code in {200, 404}
    # The codes are shown once: the setup page now sends a verified session to the security page.
    assert client.get(SETUP)["Location"] == "/accounts/security/"


def test_a_wrong_code_at_enrolment_keeps_the_same_pending_secret_and_is_recorded(
    client, practitioner, clock
):
    log_in(client, practitioner)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=practitioner, confirmed=False)

    wrong = client.post(SETUP, {"code": "000000" if code_for(device) != "000000" else "111111"})

    assert wrong.status_code == 200
    assert "This code is not valid" in wrong.content.decode()
    assert TOTPDevice.objects.get(user=practitioner) == device
    assert not TOTPDevice.objects.get().confirmed
    assert denials() == [(None, practitioner.pk, "otp wrong code (setup)")]


def test_another_session_cannot_confirm_a_secret_shown_to_the_first(client, practitioner, clock):
    log_in(client, practitioner)
    client.get(SETUP)
    first = TOTPDevice.objects.get(user=practitioner)

    other = another_client()
    log_in(other, practitioner)
    other.get(SETUP)

    assert not TOTPDevice.objects.filter(pk=first.pk).exists()
    clock.shift(31)
    assert client.post(SETUP, {"code": code_for(first)}).status_code == 200
    assert not TOTPDevice.objects.filter(user=practitioner, confirmed=True).exists()


def test_a_password_alone_cannot_enrol_a_new_device_once_one_is_confirmed(
    client, practitioner, clock
):
    enrol(client, practitioner)
    client.post("/accounts/logout/")

    log_in(client, practitioner)
    response = client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=practitioner).count() == 1


# --- Verification at later logins ------------------------------------------------------------


def test_next_login_asks_for_the_code_and_keeps_next(client, practitioner, clock):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(60)

    response = client.post(
        "/accounts/login/",
        {"username": practitioner.email, "password": PASSWORD, "next": "/agenda/?date=2026-06-02"},
    )

    assert response["Location"] == f"{VERIFY}?next=%2Fagenda%2F%3Fdate%3D2026-06-02"
    blocked = client.get("/agenda/")
    assert blocked["Location"] == f"{VERIFY}?next=%2Fagenda%2F"
    page = client.get(response["Location"])
    assert 'name="next" value="/agenda/?date=2026-06-02"' in page.content.decode()

    verified = client.post(VERIFY, {"code": code_for(device), "next": "/agenda/?date=2026-06-02"})

    assert verified["Location"] == "/agenda/?date=2026-06-02"
    assert not is_two_factor_page(client.get("/agenda/"))


def test_verify_refuses_an_external_next(client, practitioner, clock):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(60)
    log_in(client, practitioner)

    response = client.post(VERIFY, {"code": code_for(device), "next": "https://evil.example/"})

    assert response["Location"] == "/agenda/"


def test_a_backup_code_works_once(client, practitioner, clock):
    _, codes = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(60)

    log_in(client, practitioner)
    first = client.post(VERIFY, {"code": codes[0].upper()[:4] + " " + codes[0][4:]})
    assert first["Location"] == "/agenda/"
    assert StaticToken.objects.filter(device__user=practitioner).count() == 9
    client.post("/accounts/logout/")
    clock.shift(5)

    log_in(client, practitioner)
    again = client.post(VERIFY, {"code": codes[0]})

    assert again.status_code == 200
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert denials() == [(None, practitioner.pk, "otp wrong code (login)")]


def test_a_replayed_totp_code_is_refused_and_recorded(client, practitioner, clock):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(30)
    code = code_for(device)
    log_in(client, practitioner)
    assert client.post(VERIFY, {"code": code})["Location"] == "/agenda/"
    device.refresh_from_db()
    used_step = device.last_t

    # Someone who saw the code replays it within its validity window, from another browser.
    clock.shift(3)
    thief = another_client()
    log_in(thief, practitioner)
    replay = thief.post(VERIFY, {"code": code})

    assert replay.status_code == 200
    assert "This code is not valid or was already used" in replay.content.decode()
    assert DEVICE_ID_SESSION_KEY not in thief.session
    assert is_two_factor_page(thief.get("/agenda/"))
    device.refresh_from_db()
    assert device.last_t == used_step
    assert denials() == [(None, practitioner.pk, "otp replayed code (login)")]
    [event] = AccessEvent.objects.filter(action=Action.DENIED)
    assert code not in str(event.detail)


def test_a_wrong_code_is_refused_and_recorded_without_the_code(client, practitioner, clock):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(60)
    log_in(client, practitioner)
    wrong = str((int(code_for(device)) + 1) % 1_000_000).zfill(6)

    response = client.post(VERIFY, {"code": wrong})

    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert denials() == [(None, practitioner.pk, "otp wrong code (login)")]
    event = AccessEvent.objects.get(action=Action.DENIED)
    assert wrong not in event.detail
    assert practitioner.email not in event.detail


def test_wrong_codes_are_throttled_then_locked_out_for_fifteen_minutes(
    client, practitioner, clock, settings
):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    clock.shift(60)
    log_in(client, practitioner)

    assert client.post(VERIFY, {"code": "000001"}).status_code == 200
    # django-otp's throttling: the right code, sent at once after a wrong one, is refused.
    throttled = client.post(VERIFY, {"code": code_for(device)})
    assert throttled.status_code == 200
    assert "wait a few seconds" in throttled.content.decode()
    assert DEVICE_ID_SESSION_KEY not in client.session
    answers = []
    for delay in (4, 8, 16):
        clock.shift(delay)
        answers.append(client.post(VERIFY, {"code": "000002"}).status_code)

    assert answers == [200, 200, 429]  # five refusals in a row: locked
    clock.shift(60)
    locked = client.post(VERIFY, {"code": code_for(device)})
    assert locked.status_code == 429
    assert "accounts/two_factor_locked.html" in [t.name for t in locked.templates]
    assert [detail for _, _, detail in denials()] == [
        "otp wrong code (login)",
        "otp throttled (login)",
        "otp wrong code (login)",
        "otp wrong code (login)",
        "otp wrong code (login)",
        "otp locked out (login)",
    ]
    assert SecondFactorLock.objects.get(user=practitioner).locked_until is not None

    clock.shift(15 * 60)
    assert client.post(VERIFY, {"code": code_for(device)})["Location"] == "/agenda/"
    assert SecondFactorLock.objects.get(user=practitioner).failures == 0


def test_the_lock_holds_for_the_account_from_any_browser(client, practitioner, clock):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    for _ in range(5):
        clock.shift(20)
        attacker = another_client()
        log_in(attacker, practitioner, REMOTE_ADDR="203.0.113.7")
        attacker.post(VERIFY, {"code": "999999"})

    clock.shift(30)
    log_in(client, practitioner)

    assert client.post(VERIFY, {"code": code_for(device)}).status_code == 429


# --- Patients opt in -------------------------------------------------------------------------


@pytest.fixture
def patient_user(db) -> User:
    return PatientFactory(user__email="lea.bernard@example.test").user


def test_a_patient_logs_in_with_a_password_alone_until_they_opt_in(client, patient_user, clock):
    response = log_in(client, patient_user)
    assert response["Location"] == "/"
    assert client.get("/me/appointments/").status_code == 200

    security = client.get("/accounts/security/").content.decode()
    assert "Turn on two-step verification" in security
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=patient_user)
    client.post(SETUP, {"code": code_for(device), "next": "/me/appointments/"})
    patient_user.refresh_from_db()
    assert patient_user.two_factor_enabled
    client.post("/accounts/logout/")
    clock.shift(60)

    response = log_in(client, patient_user)
    assert response["Location"].startswith(VERIFY)
    assert client.get("/me/appointments/")["Location"].startswith(VERIFY)
    api = client.get("/api/v1/appointments/")
    assert api.status_code == 403
    assert api.json()["code"] == "otp_required"
    client.post(VERIFY, {"code": code_for(device)})
    assert client.get("/me/appointments/").status_code == 200


def enable_for(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    User.objects.filter(pk=user.pk).update(two_factor_enabled=True)
    user.two_factor_enabled = True
    return device


def test_turning_off_two_factor_needs_the_password_and_a_code(
    client, patient_user, clock, otp_login
):
    device = enable_for(patient_user)
    otp_login(client, patient_user)
    clock.shift(30)

    wrong_password = client.post(
        "/accounts/two-factor/disable/", {"password": "not it", "code": code_for(device)}
    )
    no_code = client.post("/accounts/two-factor/disable/", {"password": PASSWORD})
    assert wrong_password.status_code == no_code.status_code == 200
    assert TOTPDevice.objects.filter(user=patient_user).exists()
    device.refresh_from_db()
    assert device.last_t == -1  # a wrong password does not spend the code

    response = client.post(
        "/accounts/two-factor/disable/", {"password": PASSWORD, "code": code_for(device)}
    )

    assert response["Location"] == "/accounts/security/"
    patient_user.refresh_from_db()
    assert not patient_user.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=patient_user).exists()
    assert not StaticDevice.objects.filter(user=patient_user).exists()
    client.post("/accounts/logout/")
    assert log_in(client, patient_user)["Location"] == "/"


def test_staff_cannot_turn_two_factor_off(client, practitioner, clock, otp_login):
    device = otp_login(client, practitioner)

    response = client.post(
        "/accounts/two-factor/disable/", {"password": PASSWORD, "code": code_for(device)}
    )

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=practitioner, confirmed=True).exists()
    assert (
        "Turn off two-step verification" not in client.get("/accounts/security/").content.decode()
    )


def test_staff_replace_their_authenticator_after_reauthentication(client, practitioner, clock):
    old, _ = enrol(client, practitioner)
    assert client.get(SETUP)["Location"] == "/accounts/security/"
    clock.shift(30)

    refused = client.post("/accounts/two-factor/replace/", {"password": PASSWORD, "code": "1"})
    assert refused.status_code == 200
    assert client.get(SETUP)["Location"] == "/accounts/security/"

    clock.shift(30)
    granted = client.post(
        "/accounts/two-factor/replace/", {"password": PASSWORD, "code": code_for(old)}
    )
    assert granted["Location"] == SETUP
    assert "current app keeps working" in client.get(SETUP).content.decode()
    new = TOTPDevice.objects.get(user=practitioner, confirmed=False)
    assert TOTPDevice.objects.get(user=practitioner, confirmed=True) == old  # until confirmed
    clock.shift(30)
    client.post(SETUP, {"code": code_for(new)})

    assert list(TOTPDevice.objects.filter(user=practitioner)) == [new]
    new.refresh_from_db()
    assert new.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == new.persistent_id


def test_new_backup_codes_need_reauthentication_and_replace_the_old_ones(
    client, practitioner, clock
):
    device, old_codes = enrol(client, practitioner)
    clock.shift(30)
    page = client.get("/accounts/two-factor/backup-codes/")
    assert "You have 10 unused backup codes." in page.content.decode()

    refused = client.post(
        "/accounts/two-factor/backup-codes/", {"password": "wrong", "code": code_for(device)}
    )
    assert refused.status_code == 200
    assert "<li><code>" not in refused.content.decode()

    response = client.post(
        "/accounts/two-factor/backup-codes/", {"password": PASSWORD, "code": old_codes[3]}
    )

    new_codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new_codes) == 10
    assert set(new_codes).isdisjoint(old_codes)
    assert sorted(
        StaticToken.objects.filter(device__user=practitioner).values_list("token", flat=True)
    ) == sorted(new_codes)
    assert response["Cache-Control"].startswith("max-age=0")


# --- Changing the email address ---------------------------------------------------------------


def test_changing_the_email_needs_reauthentication_and_a_link_sent_to_the_new_address(
    client, practitioner, clock, otp_login, django_capture_on_commit_callbacks
):
    device = otp_login(client, practitioner)
    clock.shift(30)
    refused = client.post(
        "/accounts/security/email/", {"email": "new@example.test", "password": PASSWORD}
    )
    assert refused.status_code == 200
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/security/email/",
            {"email": " New@Example.test ", "password": PASSWORD, "code": code_for(device)},
        )

    assert response["Location"] == "/accounts/security/email/sent/"
    [message] = mail.outbox
    assert message.to == ["new@example.test"]
    link = re.search(r"https?://\S+/accounts/email/confirm/\S+/", str(message.body))
    assert link
    path = urlsplit(link.group(0)).path
    assert "new@example" not in path.lower()  # no personal data in the URL
    practitioner.refresh_from_db()
    assert practitioner.email == "dr.martin@example.test"  # not before the link is opened

    assert client.get(path).status_code == 200  # a mail scanner's GET changes nothing
    practitioner.refresh_from_db()
    assert practitioner.email == "dr.martin@example.test"
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(path)

    assert confirmed["Location"] == "/accounts/security/"
    practitioner.refresh_from_db()
    assert practitioner.email == "new@example.test"
    assert User.objects.filter_by_email("new@example.test").get() == practitioner
    assert mail.outbox[-1].to == ["dr.martin@example.test"]  # the old address is told
    assert client.post(path)["Location"] == "/accounts/security/"  # twice: nothing more


def test_an_email_already_used_gets_a_notice_and_the_requester_the_same_answer(
    client, patient_user, otp_login, django_capture_on_commit_callbacks
):
    UserFactory(email="taken@example.test")
    client.force_login(patient_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/security/email/", {"email": "taken@example.test", "password": PASSWORD}
        )

    assert response["Location"] == "/accounts/security/email/sent/"
    [notice] = mail.outbox
    assert notice.to == ["taken@example.test"]
    assert "/accounts/email/confirm/" not in str(notice.body)


def test_a_forged_or_superseded_email_link_changes_nothing(client, patient_user):
    from accounts.tokens import make_email_change_token

    stale = make_email_change_token(
        user_id=patient_user.pk, new_email="other@example.test", from_index="0" * 64
    )

    assert client.post(f"/accounts/email/confirm/{stale}/").status_code == 400
    assert client.post("/accounts/email/confirm/forged/").status_code == 400
    patient_user.refresh_from_db()
    assert patient_user.email == "lea.bernard@example.test"


def test_the_patient_profile_email_follows_the_account(client, patient_user, clock):
    from accounts.services import confirm_email_change
    from accounts.tokens import make_email_change_token

    token = make_email_change_token(
        user_id=patient_user.pk,
        new_email="lea.new@example.test",
        from_index=patient_user.email_index,
    )
    confirm_email_change(token=token)

    patient_user.patient.refresh_from_db()
    assert patient_user.patient.email == "lea.new@example.test"


# --- Password reset never bypasses the second factor -------------------------------------------


def test_password_reset_does_not_log_in_and_the_next_login_still_asks_for_the_code(
    client, practitioner, clock, django_capture_on_commit_callbacks
):
    device, _ = enrol(client, practitioner)
    client.post("/accounts/logout/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password-reset/", {"email": practitioner.email})
    link = re.search(r"https?://\S+/accounts/reset/\S+/\S+/", str(mail.outbox[-1].body))
    assert link
    form_page = client.get(urlsplit(link.group(0)).path, follow=True)
    new_password = "Quiet-Meadow-4412!"

    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )

    assert done["Location"] == "/accounts/reset/done/"
    assert "_auth_user_id" not in client.session
    assert client.get("/agenda/")["Location"].startswith("/accounts/login/")
    clock.shift(60)
    response = client.post(
        "/accounts/login/", {"username": practitioner.email, "password": new_password}
    )
    assert response["Location"].startswith(VERIFY)
    assert is_two_factor_page(client.get("/agenda/"))
    assert client.post(VERIFY, {"code": code_for(device)})["Location"] == "/agenda/"


# --- The admin site --------------------------------------------------------------------------


@pytest.fixture
def admin_user(db) -> User:
    return UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)


def test_the_admin_needs_a_verified_session(client, admin_user, settings, otp_login):
    admin_url = "/" + settings.ADMIN_URL

    anonymous = client.get(admin_url)
    assert anonymous.status_code == 302
    assert client.get(anonymous["Location"])["Location"].startswith("/accounts/login/")

    client.force_login(admin_user)
    assert (
        client.get(admin_url)["Location"]
        == f"{SETUP}?next=%2F{settings.ADMIN_URL.replace('/', '%2F')}"
    )

    otp_login(client, admin_user)
    assert client.get(admin_url).status_code == 200


def test_a_verified_account_without_admin_rights_gets_403_not_a_login_loop(
    client, patient_user, otp_login, settings
):
    enable_for(patient_user)
    otp_login(client, patient_user)

    response = client.get("/" + settings.ADMIN_URL, follow=True)

    assert response.status_code == 403


def test_device_admin_pages_never_show_the_secret(client, admin_user, otp_login, settings):
    device = otp_login(client, admin_user)

    listing = client.get(f"/{settings.ADMIN_URL}otp_totp/totpdevice/")
    detail = client.get(f"/{settings.ADMIN_URL}otp_totp/totpdevice/{device.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert device.key not in listing.content.decode() + detail.content.decode()
