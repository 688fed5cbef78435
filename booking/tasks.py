from celery import shared_task

from booking.next_slots import refresh_expired, refresh_next_slots


@shared_task(ignore_result=True)
def refresh_expired_next_slots() -> int:
    """Every few minutes (beat): keeps search's "next free slots" fresh as time passes."""
    return refresh_expired()


@shared_task(ignore_result=True)
def refresh_practitioner_next_slots(practitioner_id: int) -> int:
    """After a booking change: that practitioner's next free slots (booking.next_slots)."""
    return refresh_next_slots(practitioner_ids=[practitioner_id])
