"""What a request's integration may do, as FHIR answers: 403 when the token does not carry the
scope or a practitioner it sees did not grant it; 404 for a practitioner who granted it nothing,
exactly as for one who does not exist."""

from django.utils.translation import gettext as _

from integrations.access import IntegrationContext
from integrations.fhir.errors import FhirError, forbidden, not_found


def require_scope(context: IntegrationContext, scope: str) -> None:
    if scope not in context.token_scopes:
        raise forbidden(_("This token does not carry the scope %(scope)s.") % {"scope": scope})


def visible_practitioner_ids(context: IntegrationContext) -> list[int]:
    """Practitioners who granted the integration a scope this token carries."""
    return sorted(pk for pk, scopes in context.scopes_by_practitioner.items() if scopes)


def require_grant(
    context: IntegrationContext,
    practitioner_id: int,
    scope: str,
    *,
    hidden: FhirError | None = None,
) -> None:
    """`hidden` (default 404) answers for a practitioner the integration does not see at all."""
    if context.allows(practitioner_id, scope):
        return
    if context.scopes_by_practitioner.get(practitioner_id):
        # The integration sees this practitioner already (Practitioner search): nothing revealed.
        raise forbidden(
            _("This practitioner has not granted %(scope)s to this integration.") % {"scope": scope}
        )
    raise hidden or not_found()
