"""Password reset through the blind index: identical answers for known and unknown addresses."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from accounts.models import User
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "Quiet-Meadow-4412!"


@pytest.fixture
def account(db) -> User:
    return UserFactory(email="camille.roux@example.test")


def reset_path(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://\S+/accounts/reset/\S+/\S+/", str(message.body))
    assert match, message.body
    return urlsplit(match.group(0)).path


def request_reset(client, capture, email: str):  # type: ignore[no-untyped-def]
    with capture(execute=True):
        return client.post("/accounts/password-reset/", {"email": email}, follow=True)


def without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", content)


def test_known_and_unknown_emails_get_identical_answers(
    account, client, django_capture_on_commit_callbacks
):
    known = request_reset(client, django_capture_on_commit_callbacks, "camille.roux@example.test")
    unknown = request_reset(client, django_capture_on_commit_callbacks, "nobody@example.test")

    assert (
        known.redirect_chain == unknown.redirect_chain == [("/accounts/password-reset/sent/", 302)]
    )
    # Pages with a form carry a per-response masked CSRF token; everything else must be the same.
    assert without_csrf(known.content) == without_csrf(unknown.content)
    assert [m.to for m in mail.outbox] == [["camille.roux@example.test"]]


def test_the_reset_email_leaves_only_after_commit(
    account, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post("/accounts/password-reset/", {"email": "camille.roux@example.test"})

    assert mail.outbox == []
    assert len(callbacks) == 1


def test_the_reset_finds_the_account_whatever_the_case(
    account, client, django_capture_on_commit_callbacks
):
    request_reset(client, django_capture_on_commit_callbacks, "  Camille.ROUX@example.TEST")

    assert [m.to for m in mail.outbox] == [["camille.roux@example.test"]]


def test_an_inactive_account_gets_no_reset_email(
    account, client, django_capture_on_commit_callbacks
):
    account.is_active = False
    account.save()

    request_reset(client, django_capture_on_commit_callbacks, "camille.roux@example.test")

    assert mail.outbox == []


def test_the_reset_link_sets_a_new_password_and_the_old_one_stops_working(
    account, client, django_capture_on_commit_callbacks
):
    request_reset(client, django_capture_on_commit_callbacks, "camille.roux@example.test")

    form_page = client.get(reset_path(mail.outbox[0]), follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert done.redirect_chain[-1][0] == "/accounts/reset/done/"
    assert not client.login(email="camille.roux@example.test", password=PASSWORD)
    assert client.login(email="camille.roux@example.test", password=NEW_PASSWORD)


def test_a_reset_link_works_only_once(account, client, django_capture_on_commit_callbacks):
    request_reset(client, django_capture_on_commit_callbacks, "camille.roux@example.test")
    path = reset_path(mail.outbox[0])
    form_page = client.get(path, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    again = client.get(path, follow=True)

    assert not again.context["validlink"]


def test_a_weak_new_password_is_refused(account, client, django_capture_on_commit_callbacks):
    request_reset(client, django_capture_on_commit_callbacks, "camille.roux@example.test")
    form_page = client.get(reset_path(mail.outbox[0]), follow=True)

    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "azerty", "new_password2": "azerty"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    account.refresh_from_db()
    assert account.check_password(PASSWORD)


def test_reset_requests_are_rate_limited_per_ip(account, client):
    for _ in range(10):
        client.post("/accounts/password-reset/", {"email": "nobody@example.test"})

    response = client.post("/accounts/password-reset/", {"email": "camille.roux@example.test"})

    assert response.status_code == 429
    assert mail.outbox == []
