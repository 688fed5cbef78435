"""Who is calling the FHIR API, and what they may see: the contract between the OAuth2 layer and
the FHIR views.

A request carries `Authorization: Bearer <token>` from `POST /oauth/token/` (client credentials).
`integration_context(request)` validates it through django-oauth-toolkit, finds the integration
(it must be active) and its live grants, and returns what the views need: the audit actor and, per
granting practitioner, the scopes both granted by that practitioner and carried by the token.
Anything else raises IntegrationDenied (401 for a bad token, 403 for a suspended integration).
Quotas come next (integrations.quotas): QuotaExceeded is an IntegrationDenied with status 429.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.oauth2_backends import get_oauthlib_core

from audit.actors import Actor
from audit.models import ActorKind, Channel
from integrations.grants import live_grants
from integrations.models import Integration

# `last_used_at` is written at most this often: the page shows "last use", not a request count.
LAST_USE_PRECISION = timedelta(minutes=1)


class IntegrationDenied(Exception):
    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class IntegrationContext:
    integration: Integration
    actor: Actor
    token_scopes: frozenset[str]
    scopes_by_practitioner: dict[int, frozenset[str]] = field(default_factory=dict)

    def allows(self, practitioner_id: int, scope: str) -> bool:
        return scope in self.scopes_by_practitioner.get(practitioner_id, frozenset())

    def practitioner_ids(self, scope: str) -> list[int]:
        """The practitioners who granted `scope` (and the token carries it), sorted."""
        return sorted(pk for pk, scopes in self.scopes_by_practitioner.items() if scope in scopes)


def integration_context(request: HttpRequest) -> IntegrationContext:
    valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
    token = getattr(oauth_request, "access_token", None)
    if not valid or token is None:
        raise IntegrationDenied("A valid bearer token is required.")
    integration = (
        Integration.objects.filter(application_id=token.application_id).first()
        if token.application_id
        else None
    )
    if integration is None:
        raise IntegrationDenied("This token does not belong to an integration.")
    if not integration.is_active:
        raise IntegrationDenied(f"This integration is {integration.status}.", status=403)
    token_scopes = frozenset(token.scope.split())
    _note_use(integration)
    return IntegrationContext(
        integration=integration,
        actor=integration_actor(request, integration, scopes=token_scopes),
        token_scopes=token_scopes,
        scopes_by_practitioner=_granted_scopes(integration, token_scopes),
    )


def _note_use(integration: Integration) -> None:
    now = timezone.now()
    last = integration.last_used_at
    if last is None or now - last >= LAST_USE_PRECISION:
        Integration.objects.filter(pk=integration.pk).update(last_used_at=now)
        integration.last_used_at = now


def _granted_scopes(
    integration: Integration, token_scopes: frozenset[str]
) -> dict[int, frozenset[str]]:
    grants = live_grants(integration.pk).values_list("practitioner_id", "scopes")
    return {practitioner_id: frozenset(scopes) & token_scopes for practitioner_id, scopes in grants}


def integration_actor(
    request: HttpRequest, integration: Integration, *, scopes: frozenset[str] = frozenset()
) -> Actor:
    return Actor(
        kind=ActorKind.INTEGRATION,
        channel=Channel.FHIR,
        label=integration.name[:100],
        integration_id=integration.pk,
        request_id=getattr(request, "request_id", ""),
        ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        scopes=scopes,
    )
