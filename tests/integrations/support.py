"""Helpers for the integration tests (OAuth2, grants, quotas, harvest): integrations made the way
operators make them (integrations.services.create_integration), tokens obtained from the real
token endpoint."""

import base64
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from integrations.models import Integration
from integrations.scopes import ALL_SCOPES
from integrations.services import NewIntegration, create_integration
from practitioners.models import Practitioner

TOKEN_URL = "/oauth/token/"


def new_integration(
    *practitioners: Practitioner, scopes: Iterable[str] = ALL_SCOPES, **fields: Any
) -> NewIntegration:
    created = create_integration(
        name=fields.pop("name", f"Agenda {secrets.token_hex(4)}"),
        vendor=fields.pop("vendor", "Logiciel SA"),
        practitioner_ids=[practitioner.pk for practitioner in practitioners],
        scopes=list(scopes),
    )
    if fields:
        Integration.objects.filter(pk=created.integration.pk).update(**fields)
        created.integration.refresh_from_db()
    return created


def basic(client_id: str, secret: str) -> dict[str, str]:
    # RFC 6749 2.3.1: both are form-encoded before the Basic encoding.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"HTTP_AUTHORIZATION": f"Basic {base64.b64encode(pair.encode()).decode()}"}


def request_token(client: Any, created: NewIntegration, *, scope: str | None = None) -> Any:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return client.post(TOKEN_URL, data, **basic(created.client_id, created.client_secret))


def token_for(client: Any, created: NewIntegration, *, scope: str | None = None) -> str:
    response = request_token(client, created, scope=scope)
    assert response.status_code == 200, response.content
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def code_for(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def wrong_code_for(device: TOTPDevice) -> str:
    """A 6-digit code valid for none of the steps the device tolerates around now."""
    valid = set()
    for offset in range(-2, 3):
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time() + offset * device.step
        valid.add(f"{totp.token():06d}")
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)
