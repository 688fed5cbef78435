"""Alert rules over the access log, and their upkeep.

`detect_alerts` is idempotent: it finds what each rule sees now and keeps one open alert per
rule and user, updating its counts and times rather than raising another. Events up to an
acknowledged alert's `last_seen` were reviewed: only later ones raise a new alert. Runs every few
minutes on beat (audit.tasks) and when an admin opens /audit/ (`refresh_alerts`,
throttled), so the pages are current without a worker.

Rules (alert details hold ids and counts only):
- OUTSIDE_AGENDA: in the last 24 h, a practitioner or secretary touched the appointments or
  patients of a practitioner whose agenda they do not work on (a practitioner: their own; a
  secretary: their StaffAccess rows, as they are now). Refusals do not count: nothing was read.
- OTP_FAILURES: at least 5 refused second-factor codes for one user within an hour.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Role
from audit.models import AccessEvent, Action, Alert
from practitioners.models import Practitioner, StaffAccess

logger = logging.getLogger(__name__)

OUTSIDE_AGENDA_WINDOW = timedelta(hours=24)
OTP_WINDOW = timedelta(hours=1)
OTP_FAILURE_THRESHOLD = 5
PRACTITIONERS_NAMED = 10  # in an alert's detail; the rest is a count
REFRESH_KEY = "audit:alerts:refreshed"
REFRESH_INTERVAL = 60  # seconds between two runs triggered by page views
# pg_advisory_xact_lock key taken by every run (an arbitrary constant: "alrt"), so a beat run
# and a page view never both create the same alert.
DETECTION_LOCK = 0x616C7274


@dataclass(frozen=True)
class Finding:
    kind: str
    actor_user_id: int
    event_count: int
    first_seen: datetime
    last_seen: datetime
    detail: str


def detect_alerts(*, now: datetime | None = None) -> list[Alert]:
    """Raise or update the alerts the rules find at `now`; returns the alerts written."""
    now = now or timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DETECTION_LOCK])
        findings = [*outside_agenda(now=now), *otp_failures(now=now)]
        return _upsert(findings)


def refresh_alerts(*, now: datetime | None = None) -> None:
    """`detect_alerts` at most once a REFRESH_INTERVAL, for pages that show alerts."""
    try:
        due = cache.add(REFRESH_KEY, 1, timeout=REFRESH_INTERVAL)
    except Exception:  # the cache (Redis) is down: the page still shows current alerts
        logger.warning("alert refresh: cache unavailable, detecting without throttle")
        due = True
    if due:
        detect_alerts(now=now)


def acknowledge_alert(*, alert_id: int, user_id: int, now: datetime | None = None) -> bool:
    """Mark an open alert as reviewed; False when there is no such open alert."""
    updated = Alert.objects.filter(pk=alert_id, status=Alert.Status.OPEN).update(
        status=Alert.Status.ACKNOWLEDGED,
        acknowledged_by_id=user_id,
        acknowledged_at=now or timezone.now(),
    )
    return updated == 1


def _not_yet_reviewed(events: QuerySet[AccessEvent], kind: str) -> QuerySet[AccessEvent]:
    reviewed_until = (
        Alert.objects.filter(
            kind=kind, status=Alert.Status.ACKNOWLEDGED, actor_user_id=OuterRef("actor_user_id")
        )
        .order_by("-last_seen")
        .values("last_seen")[:1]
    )
    return events.alias(reviewed_until=Subquery(reviewed_until)).filter(
        Q(reviewed_until__isnull=True) | Q(occurred_at__gt=F("reviewed_until"))
    )


def _per_user(events: QuerySet[AccessEvent], *, at_least: int = 1) -> QuerySet[Any, Any]:
    rows = (
        events.values("actor_user_id")
        .annotate(
            events=Count("id"),
            patients=Count("patient_id", distinct=True),
            first=Min("occurred_at"),
            last=Max("occurred_at"),
        )
        .order_by("actor_user_id")
    )
    return rows.filter(events__gte=at_least) if at_least > 1 else rows


def outside_agenda_events(*, now: datetime) -> QuerySet[AccessEvent]:
    """Staff events of the window on a practitioner whose agenda the actor does not work on."""
    own = Practitioner.objects.filter(
        pk=OuterRef("practitioner_id"), user_id=OuterRef("actor_user_id")
    )
    granted = StaffAccess.objects.filter(
        practitioner_id=OuterRef("practitioner_id"), user_id=OuterRef("actor_user_id")
    )
    return (
        AccessEvent.objects.filter(
            occurred_at__gt=now - OUTSIDE_AGENDA_WINDOW,
            occurred_at__lte=now,
            actor_role__in=[Role.PRACTITIONER, Role.SECRETARY],
            actor_user_id__isnull=False,
            practitioner_id__isnull=False,
        )
        .exclude(action=Action.DENIED)
        .alias(own=Exists(own), granted=Exists(granted))
        .filter(
            Q(actor_role=Role.PRACTITIONER, own=False) | Q(actor_role=Role.SECRETARY, granted=False)
        )
    )


def outside_agenda(*, now: datetime) -> list[Finding]:
    kind = Alert.Kind.OUTSIDE_AGENDA
    events = _not_yet_reviewed(outside_agenda_events(now=now), kind)
    practitioners: dict[int, list[int]] = {}
    pairs = events.values_list("actor_user_id", "practitioner_id").distinct()
    for user_id, practitioner_id in pairs.order_by("actor_user_id", "practitioner_id"):
        practitioners.setdefault(cast(int, user_id), []).append(cast(int, practitioner_id))
    return [
        Finding(
            kind=kind,
            actor_user_id=row["actor_user_id"],
            event_count=row["events"],
            first_seen=row["first"],
            last_seen=row["last"],
            detail=_outside_detail(practitioners.get(row["actor_user_id"], []), row),
        )
        for row in _per_user(events)
    ]


def _outside_detail(practitioner_ids: list[int], row: dict[str, Any]) -> str:
    named = ",".join(str(pk) for pk in practitioner_ids[:PRACTITIONERS_NAMED])
    more = len(practitioner_ids) - PRACTITIONERS_NAMED
    suffix = f" +{more}" if more > 0 else ""
    return (
        f"practitioners outside their agendas: {len(practitioner_ids)} (ids {named}{suffix}); "
        f"patients: {row['patients']}; events in 24 h: {row['events']}"
    )


def otp_failures(*, now: datetime) -> list[Finding]:
    kind = Alert.Kind.OTP_FAILURES
    events = AccessEvent.objects.filter(
        occurred_at__gt=now - OTP_WINDOW,
        occurred_at__lte=now,
        action=Action.DENIED,
        detail__startswith="otp",
        actor_user_id__isnull=False,
    )
    rows = _per_user(_not_yet_reviewed(events, kind), at_least=OTP_FAILURE_THRESHOLD)
    return [
        Finding(
            kind=kind,
            actor_user_id=row["actor_user_id"],
            event_count=row["events"],
            first_seen=row["first"],
            last_seen=row["last"],
            detail=f"refused second-factor codes within 1 h: {row['events']}",
        )
        for row in rows
    ]


def _upsert(findings: list[Finding]) -> list[Alert]:
    if not findings:
        return []
    open_alerts = {
        (alert.kind, alert.actor_user_id): alert
        for alert in Alert.objects.select_for_update().filter(
            status=Alert.Status.OPEN,
            kind__in={f.kind for f in findings},
            actor_user_id__in={f.actor_user_id for f in findings},
        )
    }
    created: list[Alert] = []
    updated: list[Alert] = []
    for finding in findings:
        alert = open_alerts.get((finding.kind, finding.actor_user_id))
        if alert is None:
            created.append(_new_alert(finding))
        elif _merge(alert, finding):
            updated.append(alert)
    Alert.objects.bulk_create(created)
    Alert.objects.bulk_update(updated, ["event_count", "first_seen", "last_seen", "detail"])
    return created + updated


def _new_alert(finding: Finding) -> Alert:
    return Alert(
        kind=finding.kind,
        actor_user_id=finding.actor_user_id,
        event_count=finding.event_count,
        first_seen=finding.first_seen,
        last_seen=finding.last_seen,
        detail=finding.detail[:300],
    )


def _merge(alert: Alert, finding: Finding) -> bool:
    """Fold a new finding into the open alert; False when it adds nothing. The count never
    drops when older events leave the window: it is the most the rule has seen at once."""
    merged = (
        max(alert.event_count, finding.event_count),
        min(alert.first_seen, finding.first_seen),
        max(alert.last_seen, finding.last_seen),
        finding.detail[:300] if finding.last_seen > alert.last_seen else alert.detail,
    )
    if merged == (alert.event_count, alert.first_seen, alert.last_seen, alert.detail):
        return False
    alert.event_count, alert.first_seen, alert.last_seen, alert.detail = merged
    return True
