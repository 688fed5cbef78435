from datetime import date

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit import partitions
from audit.alerts import detect_alerts
from audit.chain import seal_pending


@shared_task(ignore_result=True)
def seal_audit_log() -> int:
    """Every few seconds (beat): append newly committed access events to the hash chain."""
    return seal_pending()


def partitions_ahead() -> list[date]:
    """This month and the next AUDIT_PARTITIONS_AHEAD_MONTHS."""
    this_month = timezone.now().date().replace(day=1)
    return partitions.months_from(this_month, settings.AUDIT_PARTITIONS_AHEAD_MONTHS + 1)


@shared_task(ignore_result=True)
def create_audit_partitions() -> list[str]:
    """Several times a day (beat): the monthly partitions of the events table exist ahead."""
    return partitions.create_partitions(connection, partitions_ahead())


@shared_task(ignore_result=True)
def detect_audit_alerts() -> int:
    """Every few minutes (beat): run the alert rules over the access log; returns the number of
    alerts raised or updated. Idempotent, so an overlapping or repeated run changes nothing."""
    return len(detect_alerts())
