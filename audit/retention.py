"""Retention of the audit log: whole months older than AUDIT_RETENTION_MONTHS go.

Before a month goes, its chain is verified and a checkpoint signed with the chain key records its
event count and final hash; the triggers only let rows of a checkpointed month be deleted. On
PostgreSQL the month's partition is dropped (instant, no dead rows); its seals, and any of its
rows the DEFAULT partition caught, are deleted. A month whose chain does not verify is kept: the
evidence of tampering must not be what retention removes.
"""

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import partitions
from audit.chain import checkpoint_signature, month_range, seal_pending, verify_log
from audit.models import AccessEvent, AuditCheckpoint, AuditSeal


@dataclass
class Purge:
    cutoff: date
    months: list[date] = field(default_factory=list)
    events: int = 0
    kept_tampered: list[date] = field(default_factory=list)


def retention_cutoff(*, today: date | None = None, months: int | None = None) -> date:
    """The first day of the oldest month kept: this month and the `months` before it stay."""
    today = today or timezone.now().date()
    months = settings.AUDIT_RETENTION_MONTHS if months is None else months
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def purge_expired_events(*, today: date | None = None, months: int | None = None) -> Purge:
    cutoff = retention_cutoff(today=today, months=months)
    result = Purge(cutoff=cutoff)
    seal_pending()
    stored = partitions.existing_partitions(connection)
    for month in _expired_months(cutoff, stored):
        if not verify_log(month=month).ok:
            result.kept_tampered.append(month)
            continue
        removed = _remove_month(month, partition=stored.get(month))
        if removed:
            result.events += removed
            result.months.append(month)
    return result


def _expired_months(cutoff: date, stored: dict[date, str]) -> list[date]:
    sealed = set(
        AuditSeal.objects.filter(month__lt=cutoff).values_list("month", flat=True).distinct()
    )
    return sorted(sealed | {month for month in stored if month < cutoff})


@transaction.atomic
def _remove_month(month: date, *, partition: str | None) -> int:
    head = AuditSeal.objects.filter(month=month).order_by("-seq").values("seq", "hash").first()
    previous = AuditCheckpoint.objects.filter(month=month).first()
    if head is not None:
        count, last_hash = head["seq"], head["hash"]
    elif previous is not None:
        count, last_hash = previous.event_count, previous.last_hash
    else:
        count, last_hash = 0, ""
    start, end = month_range(month)
    name = partition
    if count == 0 and not AccessEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end):
        if name is not None:  # an empty month: nothing to account for
            partitions.drop_partition(connection, name)
        return 0
    if previous is None:
        AuditCheckpoint.objects.create(
            month=month,
            event_count=count,
            last_hash=last_hash,
            signature=checkpoint_signature(month, count, last_hash),
        )
    elif head is not None:
        # Events of an already-removed month arrived late and were chained after the checkpoint:
        # checkpoints are append-only, so these stay until they can be accounted for.
        return 0
    if name is not None:
        partitions.drop_partition(connection, name)
    AccessEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end).delete()
    AuditSeal.objects.filter(month=month).delete()
    return count - (previous.event_count if previous else 0)
