"""What every REST API view (/api/v1/, booking.api) shares: how a client authenticates, how often
it may call, and how errors and pages look in the OpenAPI schema (/api/schema/).

- Authentication: a first-party app's bearer token (integrations.bearer), else the session
  (REST_FRAMEWORK's default: a session owing its second factor is refused). Integrations use
  the FHIR API, never this one.
- Throttling, per client: anonymous callers by IP (API_ANONYMOUS_RATE, 120/minute), signed-in
  users by account (API_USER_RATE, 600/minute); over the rate, 429 with Retry-After. The rates
  are read per request, so settings (and tests) can change them; an empty rate disables one.
- Errors are `{"detail", "code"}` (booking.api_errors), or per-field messages for a 400.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from integrations.bearer import FirstPartyTokenAuthentication

API_PREFIX = "/api/v1/"
BIGINT_MAX = 2**63 - 1


class AnonymousThrottle(AnonRateThrottle):
    def get_rate(self) -> str | None:
        return settings.API_ANONYMOUS_RATE  # type: ignore[no-any-return]


class UserThrottle(UserRateThrottle):
    def get_rate(self) -> str | None:
        return settings.API_USER_RATE  # type: ignore[no-any-return]


class ApiView(APIView):
    # The bearer class first: only it answers 401 with a challenge, and only to a request that
    # carries a bearer token; without one the session decides, as before.
    authentication_classes = [
        FirstPartyTokenAuthentication,
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,  # type: ignore[list-item]
    ]
    throttle_classes = [AnonymousThrottle, UserThrottle]


# --- OpenAPI ----------------------------------------------------------------------------------

ErrorOutput = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(
            help_text="Stable, machine-readable: not_found, slot_taken..."
        ),
    },
)
DESCRIPTIONS = {
    400: "Invalid input: per-field messages, or detail and code.",
    401: "A bearer token that is invalid, expired or not for this API.",
    403: "Not signed in, second factor owed, or not allowed.",
    404: "Not found, or not yours to see.",
    409: "The slot was just taken.",
    415: "A body in a media type the endpoint does not parse (or a malformed multipart body).",
    429: "Too many requests: retry after the Retry-After header's seconds.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error responses; 400 carries per-field messages, the others an Error."""
    return {
        status: OpenApiResponse(
            response=OpenApiTypes.OBJECT if status == 400 else ErrorOutput,
            description=DESCRIPTIONS[status],
        )
        for status in statuses
    }


def id_in_path(name: str) -> OpenApiParameter:
    """An id in the URL: the route takes digits only, and a key holds at most a bigint."""
    schema = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}
    return OpenApiParameter(name, schema, OpenApiParameter.PATH)  # type: ignore[arg-type]


def paginated(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """A page as the list endpoints return it: offset/limit links and the results."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


def rest_api_only(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: the schema describes /api/v1/ only (the FHIR API
    has its own CapabilityStatement at /fhir/r4/metadata)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(API_PREFIX)]


class TwoFactorSessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.TwoFactorSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
