"""What the practitioner's integrations page shows: their grants and what each app read."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet

from audit.models import AccessEvent, Action
from integrations.models import Grant, Integration
from integrations.scopes import SCOPES
from practitioners.models import Practitioner

DAY = timedelta(hours=24)
MONTH = timedelta(days=30)


@dataclass(frozen=True)
class ConnectedApp:
    grant: Grant
    scopes: list[tuple[str, Any]]  # (scope, what it allows)
    patients_day: int  # distinct patients of this agenda it read in the last 24 h
    patients_month: int  # ... in the last 30 days
    last_read: datetime | None  # its last read of this agenda, within 30 days
    expired: bool

    @property
    def integration(self) -> Integration:
        return self.grant.integration


def connected_apps(practitioner: Practitioner, *, now: datetime) -> list[ConnectedApp]:
    """The practitioner's grants in force or expired (not revoked), with what each app read of
    this agenda: two queries whatever their number."""
    grants = list(
        Grant.objects.filter(practitioner=practitioner, revoked_at__isnull=True)
        .select_related("integration")
        .order_by("integration__name", "pk")
    )
    usage = reads_by_integration(
        practitioner_id=practitioner.pk,
        integration_ids=[grant.integration_id for grant in grants],
        now=now,
    )
    return [
        ConnectedApp(
            grant=grant,
            scopes=[(scope, label) for scope, label in SCOPES.items() if scope in grant.scopes],
            patients_day=usage.get(grant.integration_id, {}).get("day", 0),
            patients_month=usage.get(grant.integration_id, {}).get("month", 0),
            last_read=usage.get(grant.integration_id, {}).get("last"),
            expired=not grant.is_live(now),
        )
        for grant in grants
    ]


def reads_by_integration(
    *, practitioner_id: int, integration_ids: list[int], now: datetime
) -> dict[int, dict[str, Any]]:
    """Distinct patients read (24 h, 30 days) and the last read, per integration, of one agenda:
    one aggregate query over the access log. Refusals read nothing and are left out."""
    if not integration_ids:
        return {}
    rows = (
        AccessEvent.objects.filter(
            practitioner_id=practitioner_id,
            integration_id__in=integration_ids,
            occurred_at__gt=now - MONTH,
            occurred_at__lte=now,
        )
        .exclude(action=Action.DENIED)
        .values("integration_id")
        .annotate(
            day=Count("patient_id", distinct=True, filter=Q(occurred_at__gt=now - DAY)),
            month=Count("patient_id", distinct=True),
            last=Max("occurred_at"),
        )
        .order_by()
    )
    return {int(row["integration_id"] or 0): dict(row) for row in rows}


def grantable_integrations() -> QuerySet[Integration]:
    return Integration.objects.filter(status=Integration.Status.ACTIVE).order_by("name")
