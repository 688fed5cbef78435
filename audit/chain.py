"""The audit log's tamper evidence: a keyed hash per event and a hash chain per month.

Writers (audit.services.record_access) only compute each event's `mac`, an HMAC of its content,
and insert: they never read or lock a chain head, so concurrent requests never wait for one
another on the audit table. After they commit, `seal_pending` (a Celery beat task every few
seconds, or `seal_audit_log`) appends the new events to their month's chain in one transaction,
under an advisory lock that only sealers take: each seal's hash covers the previous seal's hash,
the event's id and its mac. Chain order is seal order, which is commit order give or take a
batch, so a long transaction that commits late is simply sealed later, never lost.

`verify_log` walks every month's chain and names the first event that was edited (mac no longer
matches its content), removed (a seal without its event, or a gap in the sequence), inserted (an
event that is not in the chain although it is older than the sealing grace) or reordered (a seal
whose hash does not follow from its predecessor). The chain key lives outside the database
(AUDIT_CHAIN_KEY), so whoever can write the tables cannot forge macs or hashes.
"""

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from audit.models import AccessEvent, AuditCheckpoint, AuditSeal

# Fields covered by an event's mac, in this order. Changing it invalidates every stored mac.
MAC_FIELDS = (
    "actor_kind",
    "actor_user_id",
    "actor_role",
    "actor_label",
    "integration_id",
    "on_behalf_of_id",
    "action",
    "channel",
    "appointment_id",
    "patient_id",
    "practitioner_id",
    "request_id",
    "ip",
    "user_agent",
    "detail",
)
SEAL_BATCH = 5_000
VERIFY_CHUNK = 5_000
# pg_advisory_xact_lock key shared by every sealer (an arbitrary constant: "audit").
SEALER_LOCK = 0x61756469


def _key() -> bytes:
    return settings.AUDIT_CHAIN_KEY.encode()


def _hmac(message: str) -> str:
    return hmac.new(_key(), message.encode(), hashlib.sha256).hexdigest()


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def event_mac(event: AccessEvent) -> str:
    content: list[Any] = [event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")]
    content += [getattr(event, name) for name in MAC_FIELDS]
    return _hmac(json.dumps(content, separators=(",", ":"), ensure_ascii=False))


def month_range(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def genesis(month: date) -> str:
    return _hmac(f"creneau-audit-genesis:{month.isoformat()}")


def chain_hash(previous: str, event_id: int, mac: str) -> str:
    return _hmac(f"{previous}:{event_id}:{mac}")


def checkpoint_signature(month: date, event_count: int, last_hash: str) -> str:
    return _hmac(f"creneau-audit-checkpoint:{month.isoformat()}:{event_count}:{last_hash}")


# --- Sealing ----------------------------------------------------------------------------------


def seal_pending(*, batch: int = SEAL_BATCH) -> int:
    """Append every committed, unsealed event to its month's chain; returns how many."""
    since = _scan_from()
    total = 0
    while True:
        sealed = _seal_batch(since=since, batch=batch)
        total += sealed
        if sealed < batch:
            return total


def _scan_from() -> datetime | None:
    # Events are written with occurred_at = now inside transactions that commit well within the
    # grace period, so everything older than the last seal run minus the grace is sealed already.
    # Scanning from there keeps each run small however big the table grows.
    last_run = AuditSeal.objects.aggregate(last=Max("sealed_at"))["last"]
    if last_run is None:
        return None
    return last_run - timedelta(seconds=settings.AUDIT_SEAL_GRACE_SECONDS)


@transaction.atomic
def _seal_batch(*, since: datetime | None, batch: int) -> int:
    _lock_sealers()
    pending = AccessEvent.objects.filter(
        ~Exists(AuditSeal.objects.filter(event_id=OuterRef("pk")))
    ).only("id", "occurred_at", "mac")
    if since is not None:
        pending = pending.filter(occurred_at__gte=since)
    events = list(pending.order_by("id")[:batch])
    if not events:
        return 0
    now = timezone.now()
    seals: list[AuditSeal] = []
    heads: dict[date, tuple[int, str]] = {}
    for event in events:
        month = month_of(event.occurred_at)
        if month not in heads:
            heads[month] = _head(month)
        seq, previous = heads[month]
        digest = chain_hash(previous, event.pk, event.mac)
        seals.append(
            AuditSeal(
                month=month,
                seq=seq + 1,
                event_id=event.pk,
                event_occurred_at=event.occurred_at,
                hash=digest,
                sealed_at=now,
            )
        )
        heads[month] = (seq + 1, digest)
    AuditSeal.objects.bulk_create(seals)
    return len(seals)


def _lock_sealers() -> None:
    # Only sealers take this lock; writers of events never do. SQLite serializes writers anyway.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK])


def _head(month: date) -> tuple[int, str]:
    last = AuditSeal.objects.filter(month=month).order_by("-seq").values("seq", "hash").first()
    if last is not None:
        return last["seq"], last["hash"]
    checkpoint = AuditCheckpoint.objects.filter(month=month).first()
    if checkpoint is not None:  # late events of a month that retention already removed
        return checkpoint.event_count, checkpoint.last_hash
    return 0, genesis(month)


# --- Verification -----------------------------------------------------------------------------


@dataclass
class Problem:
    event_id: int | None
    message: str

    def __str__(self) -> str:
        where = f"event #{self.event_id}" if self.event_id is not None else "audit log"
        return f"{where}: {self.message}"


@dataclass
class Verification:
    verified: int = 0
    months: list[date] = field(default_factory=list)
    pending: int = 0
    removed_by_retention: int = 0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_log(*, month: date | None = None, now: datetime | None = None) -> Verification:
    """Check checkpoints, every month's chain, then the events no chain holds. Stops at the
    first problem, which names the event."""
    now = now or timezone.now()
    result = Verification()
    result.problem = _verify_checkpoints(result)
    months = [month] if month else _months()
    for each in months:
        if result.problem is not None:
            break
        result.months.append(each)
        result.problem = _verify_month(each, result)
    if result.problem is None:
        result.problem = _verify_unsealed(result, now=now, month=month)
    return result


def _verify_checkpoints(result: Verification) -> Problem | None:
    for checkpoint in AuditCheckpoint.objects.order_by("month"):
        expected = checkpoint_signature(
            checkpoint.month, checkpoint.event_count, checkpoint.last_hash
        )
        if not hmac.compare_digest(expected, checkpoint.signature):
            return Problem(None, f"the retention checkpoint of {checkpoint.month:%Y-%m} is forged")
        result.removed_by_retention += checkpoint.event_count
    return None


def _months() -> list[date]:
    return list(AuditSeal.objects.order_by("month").values_list("month", flat=True).distinct())


def _verify_month(month: date, result: Verification) -> Problem | None:
    checkpoint = AuditCheckpoint.objects.filter(month=month).first()
    seq, previous = (
        (checkpoint.event_count, checkpoint.last_hash) if checkpoint else (0, genesis(month))
    )
    for seals, events in _chunks(month, after_seq=seq):
        for seal in seals:
            seq += 1
            if seal.seq != seq:
                return Problem(seal.event_id, f"the chain of {month:%Y-%m} lost entry {seq}")
            event = events.get(seal.event_id)
            if event is None:
                return Problem(seal.event_id, "removed (its seal remains in the chain)")
            if not hmac.compare_digest(event.mac, event_mac(event)):
                return Problem(event.pk, "edited (its content no longer matches its mac)")
            if month_of(event.occurred_at) != month:
                return Problem(event.pk, "edited (moved to another month)")
            if not hmac.compare_digest(seal.hash, chain_hash(previous, event.pk, event.mac)):
                return Problem(event.pk, "out of order (its chain hash does not follow)")
            previous = seal.hash
            result.verified += 1
    return None


def _chunks(
    month: date, *, after_seq: int
) -> Iterator[tuple[list[AuditSeal], dict[int, AccessEvent]]]:
    start, end = month_range(month)
    while True:
        seals = list(
            AuditSeal.objects.filter(month=month, seq__gt=after_seq).order_by("seq")[:VERIFY_CHUNK]
        )
        if not seals:
            return
        ids = [seal.event_id for seal in seals]
        # The time range lets PostgreSQL read one partition only.
        events = AccessEvent.objects.filter(
            pk__in=ids, occurred_at__gte=start - timedelta(days=1), occurred_at__lt=end
        ).in_bulk()
        if len(events) < len(ids):  # one moved out of the month: look it up anywhere
            events |= AccessEvent.objects.filter(pk__in=set(ids) - set(events)).in_bulk()
        yield seals, events
        after_seq = seals[-1].seq


def _verify_unsealed(result: Verification, *, now: datetime, month: date | None) -> Problem | None:
    cutoff = now - timedelta(seconds=settings.AUDIT_SEAL_GRACE_SECONDS)
    unsealed = AccessEvent.objects.filter(
        ~Exists(AuditSeal.objects.filter(event_id=OuterRef("pk")))
    ).order_by("id")
    if month is not None:
        start, end = month_range(month)
        unsealed = unsealed.filter(occurred_at__gte=start, occurred_at__lt=end)
    for event in unsealed.iterator(chunk_size=VERIFY_CHUNK):
        if not hmac.compare_digest(event.mac, event_mac(event)):
            return Problem(event.pk, "forged or edited (its mac does not match its content)")
        if event.occurred_at < cutoff:
            return Problem(event.pk, "inserted outside the chain (never sealed)")
        result.pending += 1
    return None
