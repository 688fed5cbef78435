"""Helpers for the FHIR API tests: an integration granted by practitioners, its bearer tokens,
and validation of every response body with fhir.resources' R4B models (the technical correction
of R4, the closest the package has)."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from oauth2_provider.models import AccessToken, Application

from integrations.models import Grant, Integration
from integrations.scopes import ALL_SCOPES
from practitioners.models import Practitioner

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Connection:
    integration: Integration
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def issue_token(
    integration: Integration, *, scopes: Iterable[str], expires_in: timedelta = timedelta(minutes=5)
) -> str:
    """An access token as POST /oauth/token/ would hand it out (client credentials)."""
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        token=raw,
        application=integration.application,
        expires=timezone.now() + expires_in,
        scope=" ".join(scopes),
    )
    return raw


def connect(
    *practitioners: Practitioner,
    scopes: Iterable[str] = ALL_SCOPES,
    token_scopes: Iterable[str] | None = None,
    **fields: Any,
) -> Connection:
    """An active integration granted `scopes` by each practitioner, and a token carrying
    `token_scopes` (default: the same scopes)."""
    scopes = list(scopes)
    name = fields.pop("name", f"Agenda {secrets.token_hex(4)}")
    application = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="not used: tokens are issued directly",
        hash_client_secret=True,
    )
    integration = Integration.objects.create(name=name, application=application, **fields)
    for practitioner in practitioners:
        Grant.objects.create(integration=integration, practitioner=practitioner, scopes=scopes)
    token = issue_token(integration, scopes=scopes if token_scopes is None else token_scopes)
    return Connection(integration=integration, token=token)


def validated(response: Any) -> dict[str, Any]:
    """The JSON body of a FHIR response, after checking its media type and validating it, and
    every resource inside it, with the R4B model of its type."""
    assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
    body: dict[str, Any] = response.json()
    validate_resource(body)
    return body


def validate_resource(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    _no_empty_arrays(resource)
    for entry in resource.get("entry", []):
        validate_resource(entry["resource"])
    for contained in resource.get("contained", []):
        validate_resource(contained)


def _no_empty_arrays(value: Any, path: str = "") -> None:
    # FHIR JSON has no empty arrays or objects, which the models let through.
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for key, item in value.items():
            _no_empty_arrays(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"empty array at {path}"
        for index, item in enumerate(value):
            _no_empty_arrays(item, f"{path}[{index}]")


def outcome_code(response: Any) -> str:
    body = validated(response)
    assert body["resourceType"] == "OperationOutcome", body
    return str(body["issue"][0]["code"])


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((item["url"] for item in bundle["link"] if item["relation"] == relation), None)
