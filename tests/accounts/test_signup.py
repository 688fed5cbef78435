"""Sign up, email verification, `next` through the whole flow, no account enumeration."""

import re
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import Role, User
from patients.models import Patient
from tests.factories import PASSWORD, UserFactory

NEXT = "/book/dr-test/?reason=3&start=2026-06-02T09:00:00+02:00"
STRONG = "Violet-Harbour-1987!"


def signup_form(**overrides: str) -> dict[str, str]:
    form = {
        "email": "Lea.Martin@Example.test",
        "password1": STRONG,
        "password2": STRONG,
        "first_name": "Léa",
        "last_name": "Martin",
        "birth_date": "1990-04-12",
        "phone": "06 12 34 56 78",
    }
    form.update(overrides)
    return form


def verification_path(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://\S+/accounts/verify/\S+/", str(message.body))
    assert match, message.body
    return urlsplit(match.group(0)).path


@pytest.fixture
def signed_up(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/accounts/signup/?{urlencode({'next': NEXT})}", signup_form(next=NEXT)
        )
    assert response.status_code == 302
    return response


def test_signup_creates_an_inactive_patient_and_mails_the_link_after_commit(
    db, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/accounts/signup/", signup_form())

    assert response.status_code == 302
    assert response["Location"] == "/accounts/signup/sent/"
    assert mail.outbox == []
    user = User.objects.filter_by_email("lea.martin@example.test").get()
    assert (user.is_active, user.role) == (False, Role.PATIENT)
    patient = Patient.objects.get(user=user)
    assert (patient.first_name, patient.last_name) == ("Léa", "Martin")
    assert patient.email == "lea.martin@example.test"
    assert patient.phone_index is not None

    for callback in callbacks:
        callback()
    assert [m.to for m in mail.outbox] == [["lea.martin@example.test"]]


def test_verification_link_activates_logs_in_and_returns_to_the_booking(db, client, signed_up):
    response = client.get(verification_path(mail.outbox[0]))

    assert response.status_code == 302
    assert response["Location"] == NEXT
    user = User.objects.filter_by_email("lea.martin@example.test").get()
    assert user.is_active
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_used_link_does_not_log_in_again(db, client, signed_up):
    path = verification_path(mail.outbox[0])
    client.get(path)
    client.post("/accounts/logout/")

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert "_auth_user_id" not in client.session


def test_an_expired_link_gets_a_friendly_page(db, client, signed_up):
    path = verification_path(mail.outbox[0])

    with time_machine.travel(timezone.now() + timedelta(days=4)):
        response = client.get(path)

    assert response.status_code == 400
    assert b"accounts/signup/" in response.content
    assert not User.objects.filter_by_email("lea.martin@example.test").get().is_active


def test_a_tampered_link_gets_a_friendly_page(db, client, signed_up):
    path = verification_path(mail.outbox[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    response = client.get(tampered)

    assert response.status_code == 400
    assert not User.objects.filter_by_email("lea.martin@example.test").get().is_active


def test_a_taken_email_answers_the_same_and_warns_its_owner(
    db, client, django_capture_on_commit_callbacks
):
    owner = UserFactory(email="lea.martin@example.test")
    fresh = client.post("/accounts/signup/", signup_form(email="someone.new@example.test"))

    with django_capture_on_commit_callbacks(execute=True):
        taken = client.post("/accounts/signup/", signup_form())

    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert User.objects.filter_by_email("lea.martin@example.test").count() == 1
    assert not Patient.objects.filter(user=owner).exists()
    [warning] = mail.outbox
    assert warning.to == ["lea.martin@example.test"]
    assert "/accounts/verify/" not in warning.body
    assert "/accounts/password-reset/" in warning.body
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_signing_up_again_before_verifying_resends_the_link(
    db, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/signup/", signup_form())
        client.post("/accounts/signup/", signup_form())

    assert len(mail.outbox) == 2
    assert User.objects.filter_by_email("lea.martin@example.test").count() == 1
    client.get(verification_path(mail.outbox[1]))
    assert User.objects.filter_by_email("lea.martin@example.test").get().is_active


@pytest.mark.parametrize(
    "password", ["short1!", "1234567890123", "password123", "lea.martin@example"]
)
def test_a_weak_password_is_refused_with_a_linked_error(db, client, password):
    response = client.post("/accounts/signup/", signup_form(password1=password, password2=password))

    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not User.objects.exists()
    content = response.content.decode()
    assert 'aria-invalid="true"' in content
    assert 'aria-describedby="id_password1_errors id_password1_helptext"' in content
    assert 'id="id_password1_errors"' in content


def test_mismatched_passwords_are_refused(db, client):
    response = client.post("/accounts/signup/", signup_form(password2=STRONG + "x"))

    assert response.context["form"].errors["password2"]
    assert not User.objects.exists()


def test_new_passwords_are_hashed_with_argon2(db, client, settings):
    # tests/conftest.py forces MD5 for speed; this test checks the real configuration.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    client.post("/accounts/signup/", signup_form())

    user = User.objects.filter_by_email("lea.martin@example.test").get()
    assert user.password.startswith("argon2")
    assert user.check_password(STRONG)


def test_an_external_next_is_dropped(db, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/accounts/signup/?next=https://evil.example/",
            signup_form(next="https://evil.example/"),
        )

    response = client.get(verification_path(mail.outbox[0]))

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_signup_page_keeps_next_and_links_back_to_login(db, client):
    response = client.get(f"/accounts/signup/?{urlencode({'next': NEXT})}")

    content = response.content.decode()
    assert response.status_code == 200
    assert f'name="next" value="{NEXT}"'.replace("&", "&amp;") in content
    assert f"/accounts/login/?{urlencode({'next': NEXT})}".replace("&", "&amp;") in content


def test_signup_is_rate_limited_per_ip(db, client):
    for _ in range(10):
        assert client.post("/accounts/signup/", signup_form(email="")).status_code == 200

    response = client.post("/accounts/signup/", signup_form())

    assert response.status_code == 429
    assert not User.objects.exists()
    other_ip = client.post("/accounts/signup/", signup_form(), REMOTE_ADDR="10.0.0.7")
    assert other_ip.status_code == 302


@pytest.mark.parametrize("switched_off", ["erased", "deactivated after use"])
def test_a_still_valid_link_does_not_revive_an_account_switched_off_since(
    db, client, signed_up, switched_off
):
    from audit.actors import system_actor
    from patients.gdpr import erase_account

    path = verification_path(mail.outbox[0])
    client.get(path)  # verified and used
    client.post("/accounts/logout/")
    user = User.objects.filter_by_email("lea.martin@example.test").get()
    if switched_off == "erased":
        erase_account(actor=system_actor("test"), user=user)
    else:  # an admin switched the account off after it had been used
        User.objects.filter(pk=user.pk).update(is_active=False)

    response = client.get(path)

    user.refresh_from_db()
    assert not user.is_active
    assert "_auth_user_id" not in client.session
    assert response.status_code in {200, 400, 404}  # the friendly invalid-link page, no session
