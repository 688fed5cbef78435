"""Creneau's own app gets its token the standard way: authorization code with PKCE for the
signed-in user, then the token endpoint; the token works on the REST API and can be revoked."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from oauth2_provider.models import Application

from tests.factories import AppointmentFactory, PatientFactory, UserFactory

REDIRECT = "https://app.creneau.example/callback"


@pytest.fixture
def app(db):
    return Application.objects.create(
        name="Creneau mobile",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT,
        skip_authorization=False,
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(app, challenge: str, scope: str = "api") -> str:
    return urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


def test_a_signed_in_patient_authorises_the_app_which_then_reads_their_appointments(client, app):
    patient = PatientFactory()
    appointment = AppointmentFactory(patient=patient)
    verifier, challenge = pkce()
    client.force_login(patient.user)

    page = client.get(f"/oauth/authorize/?{authorize_query(app, challenge)}")
    assert page.status_code == 200
    assert "Creneau mobile" in page.content.decode()
    assert "cdn" not in page.content.decode().lower()  # our own page, no third-party assets
    form = {
        name: value
        for name, value in page.context["form"].initial.items()
        if value is not None and name != "allow"
    }
    granted = client.post("/oauth/authorize/", {**form, "allow": "Authorize"})
    assert granted.status_code == 302
    callback = urlsplit(granted["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == REDIRECT
    code = parse_qs(callback.query)["code"][0]
    client.logout()

    token = client.post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.content
    access = token.json()["access_token"]
    assert token.json()["scope"] == "api"

    listed = client.get("/api/v1/appointments/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert listed.status_code == 200, listed.content
    assert [item["id"] for item in listed.json()["results"]] == [appointment.pk]

    revoked = client.post("/oauth/revoke_token/", {"token": access, "client_id": app.client_id})
    assert revoked.status_code == 200
    after = client.get("/api/v1/appointments/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert after.status_code == 401


def test_without_pkce_no_code_is_issued(client, app):
    client.force_login(PatientFactory().user)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "api",
        }
    )

    response = client.get(f"/oauth/authorize/?{query}")

    assert response.status_code == 302
    assert "error=invalid_request" in response["Location"]
    assert "code=" not in response["Location"]


def test_a_first_party_app_cannot_ask_for_integration_scopes(client, app):
    client.force_login(PatientFactory().user)
    _verifier, challenge = pkce()

    response = client.get(
        f"/oauth/authorize/?{authorize_query(app, challenge, scope='system/Patient.read')}"
    )

    assert response.status_code == 302
    assert "error=invalid_scope" in response["Location"]
    assert "code=" not in response["Location"]


def test_a_staff_session_owing_its_second_factor_cannot_authorise(client, app):
    from accounts.models import Role

    client.force_login(UserFactory(role=Role.PRACTITIONER))
    _verifier, challenge = pkce()

    response = client.get(f"/oauth/authorize/?{authorize_query(app, challenge)}")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/")
