"""django-oauth-toolkit's validator, narrowed to what Creneau's clients may do.

Installed as OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"].

Two kinds of OAuth2 application exist:
- an integration's (integrations.models.Integration.application): client credentials only, SMART
  system scopes only (integrations.scopes), and only while the integration is active: a
  suspended or revoked one fails client authentication (401 invalid_client), like an unknown one.
- a first-party app (Creneau's own mobile or desktop app, registered by an admin): the
  authorization code grant with PKCE on behalf of a user, and the `api` scope only, for the
  REST API (/api/v1/, integrations.bearer). It may not use client credentials: a token
  without a user is worth nothing on an API that shows a user their own data.
"""

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request

from integrations.models import Integration
from integrations.scopes import ALL_SCOPES, SLOT_READ

API_SCOPE = "api"
FIRST_PARTY_SCOPES = (API_SCOPE,)
CLIENT_CREDENTIALS = "client_credentials"


def integration_of(request: Request) -> Integration | None:
    """The integration of the authenticated client of `request`, looked up once per request."""
    client = getattr(request, "client", None)
    if client is None:
        return None
    if not hasattr(request, "creneau_integration"):
        request.creneau_integration = Integration.objects.filter(application_id=client.pk).first()
    return request.creneau_integration  # type: ignore[no-any-return]


class IntegrationOAuth2Validator(OAuth2Validator):  # type: ignore[misc]
    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        integration = integration_of(request)
        return integration is None or integration.is_active

    def validate_grant_type(
        self,
        client_id: str,
        grant_type: str,
        client: Any,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        if not super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs):
            return False
        is_integration = integration_of(request) is not None
        return is_integration == (grant_type == CLIENT_CREDENTIALS)

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: Any,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        allowed = ALL_SCOPES if integration_of(request) is not None else FIRST_PARTY_SCOPES
        return set(scopes) <= set(allowed) and bool(
            super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)
        )

    def get_default_scopes(
        self, client_id: str, request: Request, *args: Any, **kwargs: Any
    ) -> list[str]:
        return [SLOT_READ] if integration_of(request) is not None else [API_SCOPE]
