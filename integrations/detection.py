"""Harvest detection: is an integration reading patients in bulk? Then it is suspended (its
tokens revoked), a HARVEST alert appears on /audit/, and the admins and the practitioners who
granted it are emailed (outbox).

Rules, over the integration's own access events since the later of an hour ago and its last
reinstatement (settings.INTEGRATIONS_HARVEST holds the thresholds):
- quota refusals: QUOTA_REFUSALS refusals of its distinct-patients quota. A client told to
  come back next hour that keeps asking for new patients is not syncing an agenda.
- walking ids: within WALK_MINUTES, WALK_MIN_IDS appointments read one by one whose ids are
  mostly consecutive (WALK_CONSECUTIVE_SHARE of the steps at most 2 apart), or
  WALK_MIN_REFUSALS reads refused (ids it may not see: 404s).
- above its baseline: more distinct patients in the last hour than BASELINE_FACTOR x its median
  active hour (an hour in which it read any patient) over BASELINE_DAYS, and more than FLOOR;
  only once it has BASELINE_MIN_HOURS of history. A new integration has no baseline: its
  quota bounds it, and the refusals rule catches it.

Runs on every quota refusal (the refusals rule each time, the others at most once a minute per
integration) and every five minutes for every active integration (integrations.tasks).
Idempotent: the active -> suspended change happens once, under the integration's row lock, and
the alert and the emails are written in that transaction only.
"""

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import Role, User
from audit.models import AccessEvent, Action, Alert
from integrations.grants import live_grants
from integrations.models import Integration, QuotaWindow
from integrations.quotas import REFUSAL_DETAIL
from integrations.services import suspend_integration
from notifications.services import notify_security_alert

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
MAX_STEP = 2  # ids this close count as consecutive
WALK_ROWS = 20_000  # events examined by the walking rule, at most
FULL_CHECK_SECONDS = 60
QUOTA_DETAIL_PREFIX = "quota "
PATIENTS_REFUSAL = REFUSAL_DETAIL[QuotaWindow.Kind.PATIENTS]


@dataclass(frozen=True)
class Finding:
    rule: str
    detail: str  # ids and counts only
    events: int


def config(name: str) -> Any:
    return settings.INTEGRATIONS_HARVEST[name]


def events_of(integration: Integration, *, since: datetime, now: datetime) -> QuerySet[AccessEvent]:
    return AccessEvent.objects.filter(
        integration_id=integration.pk, occurred_at__gt=since, occurred_at__lte=now
    )


def window_start(integration: Integration, now: datetime) -> datetime:
    """An hour ago, or the reinstatement if later: what led to a suspension is not held
    against an integration an admin reinstated."""
    start = now - HOUR
    changed = integration.status_changed_at
    return changed if changed is not None and changed > start else start


# --- Rules ------------------------------------------------------------------------------------


def quota_refusals(integration: Integration, *, since: datetime, now: datetime) -> Finding | None:
    refusals = (
        events_of(integration, since=since, now=now)
        .filter(action=Action.DENIED, detail=PATIENTS_REFUSAL)
        .count()
    )
    if refusals < config("QUOTA_REFUSALS"):
        return None
    return Finding(
        "quota refusals", f"{refusals} refusals of its distinct-patients quota within 1 h", refusals
    )


def walking_ids(integration: Integration, *, since: datetime, now: datetime) -> Finding | None:
    minutes = config("WALK_MINUTES")
    since = max(since, now - timedelta(minutes=minutes))
    rows = list(
        events_of(integration, since=since, now=now)
        .filter(action__in=[Action.VIEW, Action.DENIED])
        .exclude(detail__startswith=QUOTA_DETAIL_PREFIX)
        .values_list("action", "appointment_id")[:WALK_ROWS]
    )
    refused = sum(1 for action, _ in rows if action == Action.DENIED)
    if refused >= config("WALK_MIN_REFUSALS"):
        return Finding(
            "walking ids", f"{refused} reads refused (404) within {minutes} min", refused
        )
    ids = sorted({pk for _, pk in rows if pk is not None})
    steps = sum(1 for low, high in pairwise(ids) if high - low <= MAX_STEP)
    if len(ids) < config("WALK_MIN_IDS") or steps < config("WALK_CONSECUTIVE_SHARE") * (
        len(ids) - 1
    ):
        return None
    return Finding(
        "walking ids",
        f"{len(ids)} appointments read one by one within {minutes} min, "
        f"{steps} of {len(ids) - 1} steps between near-consecutive ids",
        len(rows),
    )


def above_baseline(integration: Integration, *, since: datetime, now: datetime) -> Finding | None:
    read = events_of(integration, since=since, now=now).exclude(action=Action.DENIED)
    current = read.aggregate(n=Count("patient_id", distinct=True))["n"]
    floor = config("FLOOR")
    if current <= floor:
        return None  # most checks end here, without reading the history
    hourly = hourly_patients(integration, until=now - HOUR, days=config("BASELINE_DAYS"))
    if len(hourly) < config("BASELINE_MIN_HOURS"):
        return None
    median = statistics.median(hourly)
    if current <= max(config("BASELINE_FACTOR") * median, floor):
        return None
    return Finding(
        "above its baseline",
        f"{current} distinct patients within 1 h; its median is {median:g} an hour "
        f"({len(hourly)} active hours in {config('BASELINE_DAYS')} days)",
        current,
    )


def hourly_patients(integration: Integration, *, until: datetime, days: int) -> list[int]:
    """Distinct patients read in each hour the integration read any, over `days` to `until`."""
    rows = (
        AccessEvent.objects.filter(
            integration_id=integration.pk,
            occurred_at__gte=until - timedelta(days=days),
            occurred_at__lt=until,
            patient_id__isnull=False,
        )
        .exclude(action=Action.DENIED)
        .annotate(hour=TruncHour("occurred_at", tzinfo=UTC))
        .values("hour")
        .annotate(patients=Count("patient_id", distinct=True))
        .order_by()
    )
    return [row["patients"] for row in rows]


def inspect_integration(
    integration: Integration, *, now: datetime, full: bool = True
) -> Finding | None:
    """The first rule that sees harvesting, or None. `full=False`: the refusals rule only."""
    since = window_start(integration, now)
    rules = [quota_refusals, walking_ids, above_baseline] if full else [quota_refusals]
    for rule in rules:
        finding = rule(integration, since=since, now=now)
        if finding is not None:
            return finding
    return None


# --- Entry points -----------------------------------------------------------------------------


def on_quota_refusal(*, integration_id: int, kind: str, now: datetime | None = None) -> bool:
    """After a quota refusal (integrations.quotas.quota_refused): keep the QUOTA alert and
    suspend the integration on a harvesting pattern. True when it was suspended now."""
    now = now or timezone.now()
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None or not integration.is_active:
        return False
    note_quota_refusal(integration=integration, kind=kind, now=now)
    full = cache.add(f"integrations:detect:{integration_id}", 1, timeout=FULL_CHECK_SECONDS)
    finding = inspect_integration(integration, now=now, full=full)
    return finding is not None and suspend_for_harvest(integration, finding, now=now) is not None


def detect_harvesting(*, now: datetime | None = None) -> list[int]:
    """Every rule over every active integration; returns the ids suspended now."""
    now = now or timezone.now()
    suspended = []
    for integration in Integration.objects.filter(status=Integration.Status.ACTIVE):
        finding = inspect_integration(integration, now=now)
        if finding is not None and suspend_for_harvest(integration, finding, now=now):
            suspended.append(integration.pk)
    return suspended


def suspend_for_harvest(
    integration: Integration, finding: Finding, *, now: datetime
) -> Alert | None:
    """Suspend, alert, email, in one transaction; None when it was no longer active."""
    with transaction.atomic():
        reason = f"harvest suspected ({finding.rule}): {finding.detail}"
        if not suspend_integration(integration_id=integration.pk, reason=reason, now=now):
            return None
        alert = Alert.objects.create(
            kind=Alert.Kind.HARVEST,
            integration_id=integration.pk,
            detail=f"Integration #{integration.pk} suspended, {finding.rule}: {finding.detail}"[
                :300
            ],
            event_count=finding.events,
            first_seen=window_start(integration, now),
            last_seen=now,
        )
        notify_harvest(integration=integration, alert=alert, finding=finding)
    logger.warning("integration #%s suspended: %s", integration.pk, finding.rule)
    return alert


def note_quota_refusal(*, integration: Integration, kind: str, now: datetime) -> None:
    """One open QUOTA alert per integration, counting its refusals until an admin reviews it."""
    limit = (
        integration.requests_per_minute
        if kind == QuotaWindow.Kind.REQUESTS
        else integration.patients_per_hour
    )
    detail = f"Integration #{integration.pk} over its quotas; latest: {kind} (limit {limit})"
    with transaction.atomic():
        # The integration's row lock serializes the "is there an open alert?" check.
        Integration.objects.select_for_update().filter(pk=integration.pk).first()
        updated = Alert.objects.filter(
            kind=Alert.Kind.QUOTA, integration_id=integration.pk, status=Alert.Status.OPEN
        ).update(event_count=F("event_count") + 1, last_seen=now, detail=detail)
        if not updated:
            Alert.objects.create(
                kind=Alert.Kind.QUOTA,
                integration_id=integration.pk,
                detail=detail,
                event_count=1,
                first_seen=now,
                last_seen=now,
            )


# --- Who is told ------------------------------------------------------------------------------


def notify_harvest(*, integration: Integration, alert: Alert, finding: Finding) -> None:
    """Outbox emails (sent after commit): the admins, and the practitioners who granted it.
    The integration's name is the vendor's product, not personal data; counts only."""
    admins = list(User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk"))
    practitioners = list(
        User.objects.filter(
            is_active=True,
            practitioner__integration_grants__in=live_grants(integration.pk),
        )
        .exclude(pk__in=[admin.pk for admin in admins])
        .distinct()
        .order_by("pk")
    )
    notify_security_alert(
        users=admins,
        key=f"harvest:{alert.pk}:admin",
        details_path="/audit/alerts/",
        **admin_summaries(integration, alert, finding),
    )
    notify_security_alert(
        users=practitioners,
        key=f"harvest:{alert.pk}:practitioner",
        details_path="/agenda/integrations/",
        **practitioner_summaries(integration),
    )


def admin_summaries(integration: Integration, alert: Alert, finding: Finding) -> dict[str, str]:
    number, name = integration.pk, integration.name
    return {
        "summary_en": f'Integration #{number} "{name}" was suspended and its tokens revoked: '
        f"{finding.rule}, {finding.detail}. Review alert #{alert.pk}, then reinstate or revoke "
        "the integration in the admin.",
        "summary_fr": f"L'intégration n°{number} « {name} » a été suspendue et ses jetons "
        f"révoqués : lecture massive suspectée ({finding.rule}, {finding.detail}). Examinez "
        f"l'alerte n°{alert.pk}, puis rétablissez ou révoquez l'intégration dans "
        "l'administration.",
    }


def practitioner_summaries(integration: Integration) -> dict[str, str]:
    name = integration.name
    return {
        "summary_en": f'"{name}", an application connected to your agenda, was suspended: it '
        "was reading patient data in bulk. Its access is cut off while an administrator "
        "reviews it. You can also withdraw your consent on your integrations page.",
        "summary_fr": f"« {name} », une application connectée à votre agenda, a été suspendue : "
        "elle lisait des données de patients en masse. Son accès est coupé pendant qu'un "
        "administrateur examine la situation. Vous pouvez aussi retirer votre consentement "
        "sur votre page des applications connectées.",
    }
