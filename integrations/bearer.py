"""Bearer tokens of first-party apps on the REST API (/api/v1/; booking.api_base lists this class
before the session's).

A first-party app (Creneau's own mobile or desktop client, registered by an admin as an OAuth2
application with the authorization code grant and PKCE) obtains a token on behalf of a user who
signed in, with their second factor when they have one, and asked for the `api` scope. Such a
token acts as that user, exactly like their session. Integrations' tokens are refused here: an
integration reaches appointment data through the FHIR API only, scoped by its grants.

A request without `Authorization: Bearer` is left to the next authentication class (the
session); one with a bearer token that is unknown, expired, revoked or not for this API gets
401 with a `WWW-Authenticate: Bearer` challenge, never the anonymous answer.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from integrations.models import Integration
from integrations.oauth_validator import API_SCOPE


def has_bearer(request: Request) -> bool:
    return request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer ")


class FirstPartyTokenAuthentication(OAuth2Authentication):  # type: ignore[misc]
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if not has_bearer(request):
            return None
        result = super().authenticate(request)
        if result is None:
            raise AuthenticationFailed(_("The access token is invalid or has expired."))
        user, token = result
        if (
            user is None
            or not user.is_active
            or API_SCOPE not in token.scope.split()
            or Integration.objects.filter(application_id=token.application_id).exists()
        ):
            request.oauth2_error = {"error": "invalid_token"}  # type: ignore[attr-defined]
            raise AuthenticationFailed(_("This access token is not valid for this API."))
        return user, token

    def authenticate_header(self, request: Request) -> str | None:
        # Without a bearer token the session decides, and DRF answers 403 as it always did.
        return super().authenticate_header(request) if has_bearer(request) else None  # type: ignore[no-any-return]


class FirstPartyTokenScheme(OpenApiAuthenticationExtension):
    target_class = FirstPartyTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(  # type: ignore[no-any-return]
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme's name, not a secret
        )
