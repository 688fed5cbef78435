from io import StringIO

from celery import shared_task
from django.core.management import call_command


@shared_task(ignore_result=True)
def purge_expired() -> str:
    """Nightly (beat): retention of the audit log, inactive accounts, old notifications and
    expired sessions, as `manage.py purge_expired` does; returns what it printed (no personal
    data: counts and months)."""
    out = StringIO()
    call_command("purge_expired", stdout=out, stderr=out)
    return out.getvalue()
