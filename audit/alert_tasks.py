from celery import shared_task

from audit.alerts import detect_alerts


@shared_task(ignore_result=True)
def detect_audit_alerts() -> int:
    """Every few minutes (beat): run the alert rules over the access log; returns the number of
    alerts raised or updated. Idempotent, so an overlapping or repeated run changes nothing."""
    return len(detect_alerts())
