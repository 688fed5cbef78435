"""Per-integration quotas: requests per minute and distinct patients per hour.

Both are fixed windows (a UTC minute, a UTC hour) counted atomically, so parallel clients of one
integration cannot together pass a limit:
- Redis (INTEGRATIONS_QUOTA_BACKEND "redis", the default when REDIS_URL is set): requests are an
  INCR + EXPIRE in one MULTI; patients are a SET per hour, checked and filled by one Lua script
  (all-or-nothing: either every patient of a response fits, or none is added). A set rather
  than a HyperLogLog: the decision must be exact at the limit, and it holds at most
  `patients_per_hour` small ids. If Redis fails, the database counts instead: the limits
  stay enforced (a window may then be counted in both places, at worst doubling it once).
- the database otherwise: QuotaWindow counters, bumped with one INSERT .. ON CONFLICT DO UPDATE
  .. RETURNING (requests), or locked with SELECT FOR UPDATE while QuotaPatient rows are added
  (patients).

Contract for the FHIR views, which know the patients only once they have read them:

    context = integration_context(request)                  # IntegrationDenied: 401/403
    try:
        check_request_quota(context.integration)
        with transaction.atomic():                          # the read and its audit events...
            page = appointments_for(actor=context.actor, ...)
            admit_patients(context.integration, [a.patient_id for a in page.items])
    except QuotaExceeded as refusal:                        # ...roll back together: nothing
        quota_refused(actor=context.actor, error=refusal)   # was returned, the refusal is
        return 429, Retry-After: refusal.retry_after        # recorded and may suspend it

`quota_refused` runs after the rollback: it records the refusal (an audit DENIED event), keeps
an open QUOTA alert for the admins, and runs the harvest rules (integrations.detection).
"""

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from math import ceil
from typing import TypeVar

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audit.actors import Actor
from audit.models import Action
from audit.services import record_access
from integrations.access import IntegrationDenied
from integrations.models import Integration, QuotaPatient, QuotaWindow

logger = logging.getLogger(__name__)

Kind = QuotaWindow.Kind
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REFUSAL_DETAIL: dict[str, str] = {
    Kind.REQUESTS: "quota requests per minute",
    Kind.PATIENTS: "quota patients per hour",
}
# Check every patient of the response against the hour's set and add them only if all fit.
ADMIT_SCRIPT = """
local limit = tonumber(ARGV[1])
local new = 0
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
end
local size = redis.call('SCARD', KEYS[1])
if size + new > limit then return -1 end
for i = 3, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return size + new
"""
Result = TypeVar("Result")


class QuotaExceeded(IntegrationDenied):
    """Over a quota: answer 429 with `Retry-After: retry_after` and return nothing."""

    def __init__(self, *, integration_id: int, kind: str, limit: int, retry_after: int) -> None:
        what = "requests per minute" if kind == Kind.REQUESTS else "distinct patients per hour"
        super().__init__(f"Quota exceeded: {limit} {what}.", status=429)
        self.integration_id = integration_id
        self.kind = kind
        self.limit = limit
        self.retry_after = retry_after


def check_request_quota(integration: Integration, *, now: datetime | None = None) -> None:
    """Count one request of the integration; QuotaExceeded once over `requests_per_minute`."""
    now = now or timezone.now()
    window = now.replace(second=0, microsecond=0)
    count = _counted(
        lambda: _redis_count_request(integration.pk, window),
        lambda: _db_count_request(integration.pk, window),
    )
    if count > integration.requests_per_minute:
        raise QuotaExceeded(
            integration_id=integration.pk,
            kind=Kind.REQUESTS,
            limit=integration.requests_per_minute,
            retry_after=_seconds_until(window + MINUTE, now),
        )


def admit_patients(
    integration: Integration, patient_ids: Iterable[int | None], *, now: datetime | None = None
) -> None:
    """Count the distinct patients about to be returned; QuotaExceeded, counting none of them,
    when they would take the hour past `patients_per_hour`. Call it before responding."""
    ids = sorted({int(pk) for pk in patient_ids if pk is not None})
    if not ids:
        return
    now = now or timezone.now()
    window = now.replace(minute=0, second=0, microsecond=0)
    limit = integration.patients_per_hour
    admitted = len(ids) <= limit and _counted(
        lambda: _redis_admit(integration.pk, window, ids, limit),
        lambda: _db_admit(integration.pk, window, ids, limit),
    )
    if not admitted:
        raise QuotaExceeded(
            integration_id=integration.pk,
            kind=Kind.PATIENTS,
            limit=limit,
            retry_after=_seconds_until(window + HOUR, now),
        )


def quota_refused(*, actor: Actor, error: QuotaExceeded) -> None:
    """After a refusal, outside the transaction that was rolled back: record it, keep the
    admins' QUOTA alert, and suspend the integration if this is a harvesting pattern."""
    from integrations.detection import on_quota_refusal

    with transaction.atomic():
        record_access(actor=actor, action=Action.DENIED, detail=REFUSAL_DETAIL[error.kind])
    on_quota_refusal(integration_id=error.integration_id, kind=error.kind)


def _seconds_until(end: datetime, now: datetime) -> int:
    return max(1, ceil((end - now).total_seconds()))


def _counted(in_redis: Callable[[], Result], in_database: Callable[[], Result]) -> Result:
    if settings.INTEGRATIONS_QUOTA_BACKEND == "redis":
        try:
            return in_redis()
        except redis.RedisError:
            logger.warning("quotas: Redis unavailable, counting in the database")
    return in_database()


# --- Redis ------------------------------------------------------------------------------------


@cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: a stalled Redis must not hold FHIR requests; the database takes over.
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _redis() -> redis.Redis:
    return _client(settings.INTEGRATIONS_QUOTA_REDIS_URL)


def _key(integration_id: int, kind: str, window: datetime) -> str:
    stamp = window.astimezone(UTC).strftime("%Y%m%d%H%M")
    return f"{settings.INTEGRATIONS_QUOTA_KEY_PREFIX}:{integration_id}:{kind}:{stamp}"


def _redis_count_request(integration_id: int, window: datetime) -> int:
    key = _key(integration_id, Kind.REQUESTS, window)
    pipe = _redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, int(2 * MINUTE.total_seconds()))
    count, _ = pipe.execute()
    return int(count)


@cache
def _admit_script(url: str) -> "redis.commands.core.Script":
    return _client(url).register_script(ADMIT_SCRIPT)


def _redis_admit(integration_id: int, window: datetime, ids: list[int], limit: int) -> bool:
    script = _admit_script(settings.INTEGRATIONS_QUOTA_REDIS_URL)
    ttl = int(2 * HOUR.total_seconds())
    size = script(keys=[_key(integration_id, Kind.PATIENTS, window)], args=[limit, ttl, *ids])
    return int(size) >= 0


# --- Database ---------------------------------------------------------------------------------


def _db_count_request(integration_id: int, window: datetime) -> int:
    quote = connection.ops.quote_name
    table = quote(QuotaWindow._meta.db_table)
    count = quote("count")
    # One statement: concurrent requests each get their own, exact count back.
    sql = (
        f"INSERT INTO {table} (integration_id, kind, window_start, {count}) "  # noqa: S608 - names of our own model
        f"VALUES (%s, %s, %s, 1) ON CONFLICT (integration_id, kind, window_start) "
        f"DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {count}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [integration_id, Kind.REQUESTS, window])
        return int(cursor.fetchone()[0])


@transaction.atomic
def _db_admit(integration_id: int, window: datetime, ids: list[int], limit: int) -> bool:
    row = _locked_window(integration_id, Kind.PATIENTS, window)
    known = set(
        QuotaPatient.objects.filter(window=row, patient_id__in=ids).values_list(
            "patient_id", flat=True
        )
    )
    new = [pk for pk in ids if pk not in known]
    if row.count + len(new) > limit:
        return False
    QuotaPatient.objects.bulk_create(QuotaPatient(window=row, patient_id=pk) for pk in new)
    QuotaWindow.objects.filter(pk=row.pk).update(count=F("count") + len(new))
    return True


def _locked_window(integration_id: int, kind: str, window: datetime) -> QuotaWindow:
    # The row may not exist yet: create it (a concurrent creator wins harmlessly), then lock it
    # so that the check and the insert of patients below are one step for this window.
    QuotaWindow.objects.bulk_create(
        [QuotaWindow(integration_id=integration_id, kind=kind, window_start=window)],
        ignore_conflicts=True,
    )
    return QuotaWindow.objects.select_for_update().get(
        integration_id=integration_id, kind=kind, window_start=window
    )


# --- Upkeep -----------------------------------------------------------------------------------


def current_usage(integration: Integration, *, now: datetime | None = None) -> dict[str, int]:
    """This minute's requests and this hour's distinct patients (for the admin)."""
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    hour = now.replace(minute=0, second=0, microsecond=0)

    def in_redis() -> dict[str, int]:
        client = _redis()
        requests = client.get(_key(integration.pk, Kind.REQUESTS, minute))
        patients = client.scard(_key(integration.pk, Kind.PATIENTS, hour))
        return {"requests": int(requests or 0), "patients": int(patients)}

    def in_database() -> dict[str, int]:
        rows = QuotaWindow.objects.filter(
            integration=integration, window_start__in=[minute, hour]
        ).values_list("kind", "window_start", "count")
        counts = {(kind, start): count for kind, start, count in rows}
        return {
            "requests": counts.get((Kind.REQUESTS, minute), 0),
            "patients": counts.get((Kind.PATIENTS, hour), 0),
        }

    return _counted(in_redis, in_database)


def reset_quotas(integration_id: int) -> None:
    """Forget the integration's current windows (an admin reinstated it)."""
    QuotaWindow.objects.filter(integration_id=integration_id).delete()
    if settings.INTEGRATIONS_QUOTA_BACKEND != "redis":
        return
    try:
        client = _redis()
        pattern = f"{settings.INTEGRATIONS_QUOTA_KEY_PREFIX}:{integration_id}:*"
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        logger.warning(
            "quotas: Redis unavailable, windows of #%s expire on their own", integration_id
        )


def purge_quota_windows(*, now: datetime | None = None) -> int:
    """Delete database windows older than a day; returns how many."""
    before = (now or timezone.now()) - timedelta(days=1)
    QuotaPatient.objects.filter(window__window_start__lt=before).delete()
    deleted, _ = QuotaWindow.objects.filter(window_start__lt=before).delete()
    return deleted
