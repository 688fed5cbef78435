"""Retention of the outbox: finished rows (sent, failed, cancelled) older than
NOTIFICATION_RETENTION_DAYS go. Pending and sending rows are never touched, whatever their age:
they are messages still owed.

A row's idempotency key goes with it, so the same key queued again after that would send again;
every key names an appointment, an offer or an alert, all long settled by then.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from notifications.models import Notification

FINISHED = [
    Notification.Status.SENT,
    Notification.Status.FAILED,
    Notification.Status.CANCELLED,
]


def purge_old_notifications(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete finished rows created more than `days` ago; returns how many went."""
    now = now or timezone.now()
    days = settings.NOTIFICATION_RETENTION_DAYS if days is None else days
    removed, _ = Notification.objects.filter(
        status__in=FINISHED, created_at__lt=now - timedelta(days=days)
    ).delete()
    return removed
