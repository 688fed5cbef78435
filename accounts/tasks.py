from celery import shared_task
from django.utils import timezone

from accounts.models import UserSession


@shared_task(ignore_result=True)
def clear_expired_sessions() -> int:
    """Hourly (beat): drop the rows of sessions past their idle expiry. Django never loads them,
    so this is housekeeping (what `manage.py clearsessions` does), and it keeps the IP and user
    agent of a session no longer than the session itself."""
    deleted, _ = UserSession.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
