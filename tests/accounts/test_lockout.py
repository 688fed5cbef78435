"""Login lockout (django-axes) keyed by the email's blind index; login and logout pages."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.db import connection
from django.utils import timezone

from accounts import crypto
from accounts.models import User
from tests.factories import PASSWORD, UserFactory

EMAIL = "camille.roux@example.test"


@pytest.fixture
def account(db) -> User:
    return UserFactory(email=EMAIL)


def log_in(client, password: str, email: str = EMAIL, **extra):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


def test_five_failures_lock_the_email_from_this_ip_with_a_neutral_page(account, client):
    answers = [log_in(client, "wrong password").status_code for _ in range(5)]

    assert answers == [200, 200, 200, 200, 429]
    locked = log_in(client, "wrong password")
    assert locked.status_code == 429
    assert "accounts/locked_out.html" in [t.name for t in locked.templates]


def test_a_locked_account_refuses_the_right_password_until_the_cool_off(account, client):
    for _ in range(5):
        log_in(client, "wrong password")

    assert log_in(client, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = log_in(client, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(account.pk)


def test_the_lock_holds_only_for_this_email_and_ip(account, client):
    for _ in range(5):
        log_in(client, "wrong password")

    assert log_in(client, PASSWORD, REMOTE_ADDR="10.0.0.9").status_code == 302


def test_an_unknown_email_is_locked_the_same_way(db, client):
    answers = [log_in(client, "wrong", email="nobody@example.test").status_code for _ in range(6)]

    assert answers == [200, 200, 200, 200, 429, 429]


def test_a_successful_login_clears_earlier_failures(account, client):
    for _ in range(4):
        log_in(client, "wrong password")
    log_in(client, PASSWORD)
    client.post("/accounts/logout/")

    assert [log_in(client, "wrong").status_code for _ in range(4)] == [200] * 4


def axes_rows_as_text() -> str:
    tables = [model._meta.db_table for model in (AccessAttempt, AccessLog, AccessFailureLog)]
    rows = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names from models
            rows.extend(cursor.fetchall())
    return repr(rows).lower()


def test_axes_stores_no_plaintext_email(account, client):
    for _ in range(5):
        log_in(client, "wrong password")

    [attempt] = AccessAttempt.objects.all()
    assert attempt.username == crypto.blind_index(EMAIL, kind="email")
    assert "camille" not in axes_rows_as_text()

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert log_in(client, PASSWORD).status_code == 302

    assert not AccessLog.objects.exists()
    assert "camille" not in axes_rows_as_text()


def test_login_keeps_next_and_links_to_signup_with_it(account, client):
    page = client.get("/accounts/login/?next=/book/dr-test/%3Freason%3D3")

    content = page.content.decode()
    assert 'name="next" value="/book/dr-test/?reason=3"' in content
    assert "/accounts/signup/?next=%2Fbook%2Fdr-test%2F%3Freason%3D3" in content
    response = client.post(
        "/accounts/login/",
        {"username": EMAIL, "password": PASSWORD, "next": "/book/dr-test/?reason=3"},
    )
    assert response["Location"] == "/book/dr-test/?reason=3"


def test_login_refuses_an_external_next(account, client):
    response = client.post(
        "/accounts/login/",
        {"username": EMAIL, "password": PASSWORD, "next": "https://evil.example/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_failed_login_links_its_error_and_does_not_say_which_part_was_wrong(account, client):
    known = log_in(client, "wrong password")
    unknown = log_in(client, PASSWORD, email="nobody@example.test")

    assert known.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    assert 'role="alert"' in known.content.decode()


def test_logout_needs_a_post(account, client):
    client.login(email=EMAIL, password=PASSWORD)

    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session
