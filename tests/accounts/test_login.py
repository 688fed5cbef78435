"""Email login through the blind index of the encrypted email."""

import pytest
from django.contrib.auth import authenticate

from accounts.models import Role, User
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def account(db) -> User:
    return UserFactory(email="camille.roux@example.test")


@pytest.mark.parametrize(
    "typed",
    ["camille.roux@example.test", "Camille.Roux@EXAMPLE.test", "  camille.roux@example.test "],
)
def test_login_by_email_ignores_case_and_spaces(account, client, typed):
    assert client.login(email=typed, password=PASSWORD)


def test_login_with_a_wrong_password_fails(account, client):
    assert not client.login(email="camille.roux@example.test", password="wrong")


def test_login_with_an_unknown_email_fails(account, client):
    assert not client.login(email="nobody@example.test", password=PASSWORD)


def test_an_inactive_account_cannot_log_in(account, client):
    account.is_active = False
    account.save()

    assert authenticate(email="camille.roux@example.test", password=PASSWORD) is None


def test_the_login_page_logs_in_by_email(account, client):
    response = client.post(
        "/accounts/login/", {"username": "CAMILLE.ROUX@example.test", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(account.pk)


def test_create_user_stores_a_normalized_email(db):
    user = User.objects.create_user("  Jean.Petit@Example.TEST ", password=PASSWORD)

    assert User.objects.get(pk=user.pk).email == "jean.petit@example.test"
    assert user.role == Role.PATIENT


def test_create_user_requires_an_email(db):
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", password=PASSWORD)


def test_create_superuser_is_an_admin(db):
    admin = User.objects.create_superuser("root@example.test", password=PASSWORD)

    assert (admin.role, admin.is_staff, admin.is_superuser) == (Role.ADMIN, True, True)
