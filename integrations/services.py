"""Operations on integrations and practitioners' grants. Each owns its transaction (STYLE).

An integration's status only moves active -> suspended -> active (an admin reinstating it) or
to revoked, which is final. Suspending or revoking deletes its OAuth2 tokens, so it is cut off
at once rather than when its current token expires.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, RefreshToken

from audit.actors import Actor
from booking.errors import InvalidInput, NotVisible
from integrations.models import Grant, Integration
from integrations.scopes import ALL_SCOPES, SLOT_READ
from practitioners.models import Practitioner

# Scopes of a grant made by `create_integration --grant` without --scopes: the least there is.
DEFAULT_GRANT_SCOPES = (SLOT_READ,)


@dataclass(frozen=True)
class NewIntegration:
    integration: Integration
    client_id: str
    client_secret: str  # in clear: shown once, never stored (the application keeps a hash)


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes in canonical order; InvalidInput naming the first unknown one, or if none."""
    asked = list(scopes)
    unknown = [scope for scope in asked if scope not in ALL_SCOPES]
    if unknown:
        raise InvalidInput(_("Unknown scope: %(scope)s") % {"scope": unknown[0]}, field="scopes")
    if not asked:
        raise InvalidInput(_("Choose at least one permission."), field="scopes")
    return [scope for scope in ALL_SCOPES if scope in asked]


@transaction.atomic
def create_integration(
    *,
    name: str,
    vendor: str = "",
    contact_email: str = "",
    practitioner_ids: Collection[int] = (),
    scopes: Collection[str] = (),
) -> NewIntegration:
    """A confidential OAuth2 client (client credentials only) and its Integration, granted by
    `practitioner_ids` (an onboarding done with their written consent) with `scopes`."""
    name = name.strip()
    grant_scopes = validate_scopes(scopes or DEFAULT_GRANT_SCOPES)
    practitioners = _existing_practitioners(practitioner_ids)
    if not name or len(name) > 120 or Integration.objects.filter(name=name).exists():
        raise InvalidInput(_("Choose a new, non-empty integration name."), field="name")
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError as exc:
            raise InvalidInput(_("Enter a valid contact email."), field="contact_email") from exc
    application, secret = _confidential_client(name)
    integration = Integration.objects.create(
        name=name, vendor=vendor, contact_email=contact_email, application=application
    )
    Grant.objects.bulk_create(
        Grant(integration=integration, practitioner=practitioner, scopes=grant_scopes)
        for practitioner in practitioners
    )
    return NewIntegration(integration, application.client_id, secret)


def _confidential_client(name: str) -> tuple[Application, str]:
    """A client-credentials application, and its secret in clear, which only the caller sees."""
    secret = generate_client_secret()
    application = Application(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    application.save()  # hashes client_secret: `secret` is the only clear copy
    return application, secret


def _existing_practitioners(practitioner_ids: Collection[int]) -> list[Practitioner]:
    wanted = set(practitioner_ids)
    found = list(Practitioner.objects.filter(pk__in=wanted).order_by("pk"))
    missing = sorted(wanted - {practitioner.pk for practitioner in found})
    if missing:
        raise InvalidInput(
            _("Unknown practitioner id: %(id)s") % {"id": missing[0]}, field="practitioners"
        )
    return found


# --- Status: suspend, reinstate, revoke -------------------------------------------------------


def revoke_tokens(*, application_id: int) -> int:
    """Delete every access and refresh token of the application; returns how many."""
    refresh, _ = RefreshToken.objects.filter(application_id=application_id).delete()
    access, _ = AccessToken.objects.filter(application_id=application_id).delete()
    return access + refresh


def _change_status(
    integration: Integration, status: str, *, reason: str, by: Any, now: datetime | None
) -> None:
    integration.status = status
    integration.status_reason = reason[:300]
    integration.status_changed_at = now or timezone.now()
    integration.status_changed_by = by
    integration.save(
        update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"]
    )


@transaction.atomic
def suspend_integration(
    *, integration_id: int, reason: str, by: Any = None, now: datetime | None = None
) -> bool:
    """Suspend an active integration and revoke all its tokens. False when it was not active
    (already suspended or revoked): callers raise alerts only for a real change."""
    integration = Integration.objects.select_for_update().get(pk=integration_id)
    if integration.status != Integration.Status.ACTIVE:
        return False
    _change_status(integration, Integration.Status.SUSPENDED, reason=reason, by=by, now=now)
    revoke_tokens(application_id=integration.application_id)
    return True


@transaction.atomic
def reinstate_integration(*, integration_id: int, by: Any, reason: str = "") -> bool:
    """An admin's decision after review: suspended -> active, with fresh quota windows (the
    counts that led to the suspension would otherwise refuse its first request). A revoked
    integration stays revoked."""
    from integrations.quotas import reset_quotas

    integration = Integration.objects.select_for_update().get(pk=integration_id)
    if integration.status != Integration.Status.SUSPENDED:
        return False
    _change_status(
        integration, Integration.Status.ACTIVE, reason=reason or "reinstated", by=by, now=None
    )
    transaction.on_commit(lambda: reset_quotas(integration_id), robust=True)
    return True


@transaction.atomic
def revoke_integration(*, integration_id: int, by: Any, reason: str = "") -> bool:
    """For good: its tokens and every grant are revoked. False when it was revoked already."""
    integration = Integration.objects.select_for_update().get(pk=integration_id)
    if integration.status == Integration.Status.REVOKED:
        return False
    now = timezone.now()
    _change_status(
        integration, Integration.Status.REVOKED, reason=reason or "revoked", by=by, now=now
    )
    revoke_tokens(application_id=integration.application_id)
    Grant.objects.filter(integration=integration, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    return True


# --- A practitioner's consent ---------------------------------------------------------------


def grant_integration(
    *,
    actor: Actor,
    practitioner: Practitioner,
    integration_id: int,
    scopes: Iterable[str],
    expires_at: datetime | None,
) -> Grant:
    """The practitioner's consent to `integration_id` for `scopes` until `expires_at`. A grant
    already given to it is replaced (the old row stays, revoked, as the history)."""
    scopes = validate_scopes(scopes)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(_("Choose a date in the future."), field="expires_at")
    try:
        return _replace_grant(actor, practitioner, integration_id, scopes, expires_at, now)
    except IntegrityError as exc:  # the same grant, given at the same moment in another tab
        raise InvalidInput(_("This application was just granted: reload the page.")) from exc


@transaction.atomic
def _replace_grant(
    actor: Actor,
    practitioner: Practitioner,
    integration_id: int,
    scopes: list[str],
    expires_at: datetime | None,
    now: datetime,
) -> Grant:
    integration = Integration.objects.filter(
        pk=integration_id, status=Integration.Status.ACTIVE
    ).first()
    if integration is None:
        raise InvalidInput(_("This application cannot be connected."), field="integration")
    Grant.objects.filter(
        integration=integration, practitioner=practitioner, revoked_at__isnull=True
    ).update(revoked_at=now, revoked_by=actor.user)
    return Grant.objects.create(
        integration=integration,
        practitioner=practitioner,
        scopes=scopes,
        granted_by=actor.user,
        granted_at=now,
        expires_at=expires_at,
    )


@transaction.atomic
def revoke_grant(*, actor: Actor, practitioner: Practitioner, grant_id: int) -> Grant:
    """Withdraw the practitioner's own live grant; NotVisible (404) for any other."""
    grant = (
        live_grants_of(practitioner)
        .select_for_update(of=("self",))
        .select_related("integration")
        .filter(pk=grant_id)
        .first()
    )
    if grant is None:
        raise NotVisible(detail="grant not visible to actor")
    grant.revoked_at = timezone.now()
    grant.revoked_by = actor.user
    grant.save(update_fields=["revoked_at", "revoked_by"])
    return grant


@transaction.atomic
def withdraw_grants(*, grant_ids: Collection[int], by: Any) -> int:
    """An admin withdrawing grants (a practitioner's request, a closed practice); returns how
    many were still in force."""
    return Grant.objects.filter(pk__in=grant_ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=by
    )


def live_grants_of(practitioner: Practitioner) -> QuerySet[Grant]:
    """The practitioner's grants not revoked (expired ones included: still theirs to revoke)."""
    return Grant.objects.filter(practitioner=practitioner, revoked_at__isnull=True)
