"""OAuth2 for integrations (issue #7, part 1): client credentials at POST /oauth/token/, 5-minute
tokens carrying SMART system scopes only, no token for a suspended or revoked integration, and
`integration_context` refusing expired and revoked tokens. Then first-party bearer tokens on the
REST API, which integrations' tokens never open."""

import secrets
from datetime import timedelta

import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from oauthlib.common import Request as OAuthRequest

from accounts.models import Role
from audit.models import AccessEvent, ActorKind, Channel
from integrations.access import IntegrationDenied, integration_context
from integrations.models import Integration
from integrations.oauth_validator import IntegrationOAuth2Validator
from integrations.scopes import APPOINTMENT_READ, PATIENT_READ, SLOT_READ
from integrations.services import (
    reinstate_integration,
    revoke_integration,
    suspend_integration,
)
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, UserFactory
from tests.integrations.support import (
    TOKEN_URL,
    basic,
    bearer,
    new_integration,
    request_token,
    token_for,
)

pytestmark = pytest.mark.django_db


def context_for(token: str):
    request = RequestFactory().get("/fhir/r4/Appointment", **bearer(token))
    return integration_context(request)


# --- The token endpoint -----------------------------------------------------------------------


def test_basic_auth_gets_a_five_minute_token_with_the_scopes_asked(client):
    created = new_integration(PractitionerFactory())
    before = timezone.now()

    response = request_token(client, created, scope=f"{SLOT_READ} {APPOINTMENT_READ}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert set(body["scope"].split()) == {SLOT_READ, APPOINTMENT_READ}
    assert "refresh_token" not in body
    token = AccessToken.objects.get(application=created.integration.application)
    assert token.user is None
    assert (
        before + timedelta(seconds=299) <= token.expires <= timezone.now() + timedelta(seconds=300)
    )
    assert token.token == ""  # stored as its SHA-256 only (RFC 9700 token storage)


def test_credentials_in_the_form_body_work_too(client):
    created = new_integration()

    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "scope": PATIENT_READ,
        },
    )

    assert response.status_code == 200, response.content
    assert response.json()["scope"] == PATIENT_READ


def test_a_token_asked_without_scope_carries_slot_read_only(client):
    response = request_token(client, new_integration())

    assert response.json()["scope"] == SLOT_READ


@pytest.mark.parametrize("scope", ["api", "system/Patient.write", "read", f"{SLOT_READ} api"])
def test_scopes_outside_the_smart_system_scopes_are_refused(client, scope):
    response = request_token(client, new_integration(), scope=scope)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


def test_a_wrong_secret_is_401(client):
    created = new_integration()

    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        **basic(created.client_id, secrets.token_urlsafe(40)),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("status", [Integration.Status.SUSPENDED, Integration.Status.REVOKED])
def test_a_suspended_or_revoked_integration_gets_no_token(client, status):
    created = new_integration(status=status)

    response = request_token(client, created, scope=SLOT_READ)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_an_integration_may_not_use_another_grant(client):
    created = new_integration()

    response = client.post(
        TOKEN_URL,
        {"grant_type": "password", "username": "someone", "password": "x"},
        **basic(created.client_id, created.client_secret),
    )

    assert response.status_code == 400
    assert not AccessToken.objects.exists()


def test_an_application_that_is_not_an_integration_cannot_use_client_credentials(client):
    secret = secrets.token_urlsafe(30)
    application = Application.objects.create(
        name="Some app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
    )

    response = client.post(
        TOKEN_URL, {"grant_type": "client_credentials"}, **basic(application.client_id, secret)
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert not AccessToken.objects.exists()


def test_first_party_apps_may_ask_for_the_api_scope_only():
    application = Application.objects.create(
        name="Creneau mobile",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.creneau.example/callback",
    )
    request = OAuthRequest("https://testserver/oauth/authorize/")
    request.client = application
    validator = IntegrationOAuth2Validator()

    assert validator.validate_scopes(application.client_id, ["api"], application, request)
    assert not validator.validate_scopes(application.client_id, [SLOT_READ], application, request)
    assert validator.get_default_scopes(application.client_id, request) == ["api"]


# --- integration_context: what the FHIR views see ----------------------------------------------


def test_a_valid_token_gives_the_context_of_its_integration(client):
    practitioner = PractitionerFactory()
    created = new_integration(practitioner, scopes=[SLOT_READ, APPOINTMENT_READ])
    token = token_for(client, created, scope=f"{APPOINTMENT_READ} {PATIENT_READ}")

    context = context_for(token)

    assert context.integration == created.integration
    assert context.token_scopes == {APPOINTMENT_READ, PATIENT_READ}
    # The grant's scopes intersected with the token's: Patient.read was not granted.
    assert context.allows(practitioner.pk, APPOINTMENT_READ)
    assert not context.allows(practitioner.pk, PATIENT_READ)
    assert not context.allows(practitioner.pk, SLOT_READ)
    assert context.practitioner_ids(APPOINTMENT_READ) == [practitioner.pk]
    assert context.actor.kind == ActorKind.INTEGRATION
    assert context.actor.channel == Channel.FHIR
    assert context.actor.integration_id == created.integration.pk


def test_an_expired_token_is_401(client):
    token = token_for(client, new_integration(), scope=SLOT_READ)

    with (
        time_machine.travel(timezone.now() + timedelta(seconds=301)),
        pytest.raises(IntegrationDenied) as refused,
    ):
        context_for(token)

    assert refused.value.status == 401


def test_a_token_is_still_valid_just_before_its_five_minutes(client):
    token = token_for(client, new_integration(), scope=SLOT_READ)

    with time_machine.travel(timezone.now() + timedelta(seconds=290)):
        assert context_for(token).token_scopes == {SLOT_READ}


def test_suspending_revokes_the_tokens_at_once(client):
    created = new_integration()
    token = token_for(client, created, scope=SLOT_READ)

    assert suspend_integration(integration_id=created.integration.pk, reason="test")

    with pytest.raises(IntegrationDenied) as refused:
        context_for(token)
    assert refused.value.status == 401
    assert not AccessToken.objects.filter(application=created.integration.application).exists()
    created.integration.refresh_from_db()
    assert created.integration.status == Integration.Status.SUSPENDED
    assert created.integration.status_reason == "test"
    assert created.integration.status_changed_at is not None


def test_a_token_of_an_integration_suspended_behind_its_back_is_403(client):
    created = new_integration()
    token = token_for(client, created, scope=SLOT_READ)
    # A status changed without the service (a database edit): the token row survives, the
    # context still refuses it.
    Integration.objects.filter(pk=created.integration.pk).update(
        status=Integration.Status.SUSPENDED
    )

    with pytest.raises(IntegrationDenied) as refused:
        context_for(token)

    assert refused.value.status == 403


def test_garbage_and_missing_tokens_are_401():
    for headers in ({}, bearer("not-a-token"), {"HTTP_AUTHORIZATION": "Basic abc"}):
        request = RequestFactory().get("/fhir/r4/Practitioner", **headers)
        with pytest.raises(IntegrationDenied) as refused:
            integration_context(request)
        assert refused.value.status == 401


def test_reinstating_is_the_way_back_and_a_new_token_is_needed(client):
    created = new_integration()
    old = token_for(client, created, scope=SLOT_READ)
    suspend_integration(integration_id=created.integration.pk, reason="test")
    admin = UserFactory(role=Role.ADMIN, is_staff=True)

    assert reinstate_integration(integration_id=created.integration.pk, by=admin)

    with pytest.raises(IntegrationDenied):
        context_for(old)
    assert context_for(token_for(client, created, scope=SLOT_READ)).integration.is_active
    created.integration.refresh_from_db()
    assert created.integration.status_changed_by == admin


def test_revoking_is_final_and_withdraws_every_grant(client):
    practitioner = PractitionerFactory()
    created = new_integration(practitioner)
    admin = UserFactory(role=Role.ADMIN, is_staff=True)

    assert revoke_integration(integration_id=created.integration.pk, by=admin)

    assert not reinstate_integration(integration_id=created.integration.pk, by=admin)
    assert not suspend_integration(integration_id=created.integration.pk, reason="again")
    created.integration.refresh_from_db()
    assert created.integration.status == Integration.Status.REVOKED
    assert created.integration.grants.get().revoked_at is not None
    assert request_token(client, created).status_code == 401


def test_last_use_is_written_at_most_once_a_minute(client):
    created = new_integration()
    token = token_for(client, created, scope=SLOT_READ)
    context_for(token)
    created.integration.refresh_from_db()
    first = created.integration.last_used_at
    assert first is not None

    context_for(token)

    created.integration.refresh_from_db()
    assert created.integration.last_used_at == first
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        context_for(token_for(client, created, scope=SLOT_READ))
    created.integration.refresh_from_db()
    assert created.integration.last_used_at > first


# --- First-party bearer tokens on the REST API --------------------------------------------------


def first_party_token(user, *, scope: str = "api", expires_in: int = 300) -> str:
    """A token as the authorization endpoint would issue it to Creneau's own app for `user`."""
    application = Application.objects.create(
        name="Creneau mobile",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.creneau.example/callback",
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        token=raw,
        user=user,
        application=application,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    return raw


def test_a_first_party_token_acts_as_its_user_on_the_api(client):
    patient = PatientFactory()
    appointment = AppointmentFactory(patient=patient)
    token = first_party_token(patient.user)

    response = client.get("/api/v1/appointments/", **bearer(token))

    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["results"]] == [appointment.pk]
    event = AccessEvent.objects.get(appointment_id=appointment.pk)
    assert (event.actor_user_id, event.channel) == (patient.user.pk, Channel.API)


def test_an_integration_token_does_not_open_the_rest_api(client):
    practitioner = PractitionerFactory()
    AppointmentFactory(practitioner=practitioner)
    created = new_integration(practitioner)
    token = token_for(client, created, scope=APPOINTMENT_READ)

    response = client.get("/api/v1/appointments/", **bearer(token))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not AccessEvent.objects.exists()


def test_an_integration_token_is_refused_even_with_a_user_and_the_api_scope(client):
    # Never issued so (oauth_validator), but a row edited by hand must not open the API either.
    patient = PatientFactory()
    AppointmentFactory(patient=patient)
    created = new_integration()
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        token=raw,
        user=patient.user,
        application=created.integration.application,
        scope="api",
        expires=timezone.now() + timedelta(minutes=5),
    )

    response = client.get("/api/v1/appointments/", **bearer(raw))

    assert response.status_code == 401
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    ("scope", "expires_in"), [("api", -1), ("", 300), ("system/Appointment.read", 300)]
)
def test_expired_or_foreign_first_party_tokens_are_401(client, scope, expires_in):
    token = first_party_token(PatientFactory().user, scope=scope, expires_in=expires_in)

    response = client.get("/api/v1/appointments/", **bearer(token))

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_public_endpoint_with_a_bad_token_is_401_not_anonymous(client):
    response = client.get("/api/v1/specialties/", **bearer("nonsense"))

    assert response.status_code == 401


def test_without_a_token_the_api_still_answers_403_not_authenticated(client):
    response = client.get("/api/v1/appointments/")

    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"
