from celery import shared_task

from integrations import detection
from integrations.quotas import purge_quota_windows


@shared_task(ignore_result=True)
def detect_harvesting() -> int:
    """Every five minutes (beat): the harvest rules over every active integration, then the
    upkeep of the database quota windows. Returns how many integrations were suspended.
    Idempotent: an overlapping run finds them suspended already and changes nothing."""
    suspended = detection.detect_harvesting()
    purge_quota_windows()
    return len(suspended)
