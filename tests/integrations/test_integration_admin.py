"""Integrations in the admin (issue #7, part 1): list and detail, quotas tunable, suspend /
reinstate / revoke for platform admins only, grants withdrawn but never given from there."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from oauth2_provider.models import AccessToken

from accounts.models import Role
from integrations.models import Grant, Integration
from integrations.scopes import SLOT_READ
from tests.factories import PractitionerFactory, UserFactory
from tests.integrations.support import new_integration, token_for

ADMIN = f"/{settings.ADMIN_URL}integrations/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _in_english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def platform_admin(client, otp_login):
    user = UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
    otp_login(client, user)
    return user


def act(client, action: str, *integrations: Integration):
    return client.post(
        f"{ADMIN}integration/",
        {"action": action, "_selected_action": [integration.pk for integration in integrations]},
    )


def test_the_list_shows_status_grants_and_quotas(
    client, platform_admin, django_assert_max_num_queries
):
    for _ in range(3):
        new_integration(PractitionerFactory(), PractitionerFactory())

    with django_assert_max_num_queries(12):
        response = client.get(f"{ADMIN}integration/")

    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert [row.live_grant_count for row in rows] == [2, 2, 2]


def test_the_detail_shows_the_client_id_and_the_usage_never_the_secret(client, platform_admin):
    created = new_integration(PractitionerFactory())

    response = client.get(f"{ADMIN}integration/{created.integration.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert created.client_id in html
    assert created.client_secret not in html
    assert "0 requests this minute, 0 distinct patients this hour" in html


def test_quotas_are_tuned_in_the_form(client, platform_admin):
    integration = new_integration().integration

    response = client.post(
        f"{ADMIN}integration/{integration.pk}/change/",
        {
            "name": integration.name,
            "vendor": integration.vendor,
            "contact_email": "",
            "requests_per_minute": 300,
            "patients_per_hour": 2000,
            "grants-TOTAL_FORMS": 0,
            "grants-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302, response.content
    integration.refresh_from_db()
    assert (integration.requests_per_minute, integration.patients_per_hour) == (300, 2000)
    assert integration.status == Integration.Status.ACTIVE  # not a form field


def test_suspend_reinstate_revoke(client, platform_admin):
    created = new_integration(PractitionerFactory())
    token_for(client, created, scope=SLOT_READ)
    integration = created.integration

    act(client, "suspend", integration)
    integration.refresh_from_db()
    assert integration.status == Integration.Status.SUSPENDED
    assert integration.status_changed_by == platform_admin
    assert not AccessToken.objects.exists()

    act(client, "reinstate", integration)
    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE

    act(client, "revoke", integration)
    integration.refresh_from_db()
    assert integration.status == Integration.Status.REVOKED
    assert not Grant.objects.filter(integration=integration, revoked_at__isnull=True).exists()


def test_staff_who_are_not_platform_admins_cannot_change_a_status(client, otp_login):
    staff = UserFactory(role=Role.PATIENT, is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="integrations"))
    otp_login(client, staff)
    integration = new_integration().integration

    assert client.get(f"{ADMIN}integration/").status_code == 200
    act(client, "suspend", integration)

    integration.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE


def test_grants_are_withdrawn_from_the_admin_but_never_added(client, platform_admin):
    grant = new_integration(PractitionerFactory()).integration.grants.get()

    assert client.get(f"{ADMIN}grant/add/").status_code == 403
    client.post(f"{ADMIN}grant/", {"action": "withdraw", "_selected_action": [grant.pk]})

    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == platform_admin


def test_integrations_are_registered_by_command_not_added_here(client, platform_admin):
    assert client.get(f"{ADMIN}integration/add/").status_code == 403
