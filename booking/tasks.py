from celery import shared_task

from booking.next_slots import refresh_expired


@shared_task(ignore_result=True)
def refresh_expired_next_slots() -> int:
    """Every few minutes (beat): keeps search's "next free slots" fresh as time passes."""
    return refresh_expired()
