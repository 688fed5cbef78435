"""Which practitioners granted an integration what (read by booking.selectors and the FHIR API)."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from integrations.models import Grant


def live_grants(integration_id: int) -> QuerySet[Grant]:
    """Grants of the integration that are neither revoked nor expired."""
    return Grant.objects.filter(integration_id=integration_id, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def granted_practitioner_ids(
    *, integration_id: int, scope: str, token_scopes: frozenset[str]
) -> list[int]:
    """The practitioners who granted `scope` to the integration, if its token carries it too.
    Scopes are a JSON list (portable to SQLite), so they are matched here, over few rows."""
    if scope not in token_scopes:
        return []
    return sorted(
        practitioner_id
        for practitioner_id, scopes in live_grants(integration_id).values_list(
            "practitioner_id", "scopes"
        )
        if scope in scopes
    )
