"""Celery tasks. They take ids, never objects or personal data: the broker holds no names."""

from collections.abc import Iterator, Sequence
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications.delivery import deliver, due_ids
from notifications.models import Notification


def batched(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_notifications(notification_ids: list[int]) -> dict[str, int]:
    """Deliver a batch. Safe to run twice with the same ids (claims are compare-and-swap), which
    acks_late + reject_on_worker_lost make possible: a killed worker's batch is redelivered."""
    outcome = deliver(notification_ids)
    _schedule_retries(outcome.retried)
    return outcome.as_dict()


def _schedule_retries(ids: list[int]) -> None:
    if not ids:
        return
    now = timezone.now()
    for pk, due in Notification.objects.filter(pk__in=ids).values_list("pk", "scheduled_for"):
        Notification.objects.filter(pk=pk).update(enqueued_at=now)
        try:
            deliver_notifications.apply_async([[pk]], eta=due)
        except Exception:  # broker gone: the relay retries it once due
            Notification.objects.filter(pk=pk).update(enqueued_at=None)


@shared_task(ignore_result=True)
def relay_pending(limit: int | None = None) -> int:
    """Every minute (beat): hand out due rows nobody handed out recently, in batches. This is
    what delivers reminders when due and what recovers from a broker outage or a dead worker."""
    ids = due_ids(limit=limit or settings.NOTIFICATIONS_RELAY_LIMIT)
    Notification.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())
    for chunk in batched(ids, settings.NOTIFICATIONS_BATCH_SIZE):
        deliver_notifications.delay(list(chunk))
    return len(ids)


@shared_task(ignore_result=True)
def expire_waitlist_offers() -> int:
    from booking.waitlist import expire_waitlist_offers as expire

    return expire()


def run_relay_in_process(limit: int | None = None) -> dict[str, Any]:
    """The relay without a broker (`manage.py relay_notifications`, for setups without Redis)."""
    ids = due_ids(limit=limit or settings.NOTIFICATIONS_RELAY_LIMIT)
    totals = {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
    for chunk in batched(ids, settings.NOTIFICATIONS_BATCH_SIZE):
        for name, count in deliver(list(chunk)).as_dict().items():
            totals[name] += count
    return totals
