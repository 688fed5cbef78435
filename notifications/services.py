"""Writing to the outbox. Called inside the transaction of the change that causes the message
(DESIGN invariant 6): the row commits with the booking or not at all, and is handed to Celery
only after commit. If Redis is down then, the relay picks the row up later."""

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from booking.models import Appointment, WaitlistOffer
from notifications.models import Notification

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Channel = Notification.Channel
Recipient = Notification.Recipient

# Which channels a patient gets for each kind, in order of preference; "both" kinds use all.
URGENT_KINDS = {Kind.WAITLIST_OFFER, Kind.CANCELLATION}


def enqueue(notification_ids: list[int]) -> None:
    """Hand rows to Celery. A broker failure is logged, never raised: the rows stay pending and
    the relay (every minute) enqueues them again, so nothing is lost."""
    if not notification_ids:
        return
    try:
        from notifications.tasks import deliver_notifications

        deliver_notifications.delay(notification_ids)
    except Exception:  # kombu raises several unrelated types when the broker is unreachable
        # Not handed out after all: the relay's next run (within a minute) takes them.
        Notification.objects.filter(pk__in=notification_ids).update(enqueued_at=None)
        logger.warning(
            "broker unreachable; %d notification(s) left for the relay", len(notification_ids)
        )


def _enqueue_keys(keys: list[str]) -> None:
    ids = list(
        Notification.objects.filter(
            idempotency_key__in=keys, status=Notification.Status.PENDING
        ).values_list("pk", flat=True)
    )
    enqueue(ids)


def outbox_row(
    *,
    kind: str,
    channel: str,
    recipient: str,
    key: str,
    appointment: Appointment | None = None,
    waitlist_offer: WaitlistOffer | None = None,
    recipient_user: Any = None,
    scheduled_for: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> Notification:
    """An unsaved outbox row; `queue` writes it."""
    return Notification(
        kind=kind,
        channel=channel,
        recipient=recipient,
        idempotency_key=key,
        appointment=appointment,
        waitlist_offer=waitlist_offer,
        recipient_user=recipient_user,
        scheduled_for=scheduled_for or timezone.now(),
        context=context or {},
    )


def queue(rows: list[Notification]) -> list[Notification]:
    """Write outbox rows in one insert, in the caller's transaction; a row whose idempotency key
    exists already is skipped (the same change queued twice sends once). Rows due now are handed
    to Celery after commit; later ones (reminders) wait for the relay."""
    if not rows:
        return []
    now = timezone.now()
    due = [row.idempotency_key for row in rows if row.scheduled_for <= now]
    for row in rows:
        # Marked as handed out: the relay leaves these to the after-commit send for a while.
        row.enqueued_at = now if row.scheduled_for <= now else None
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    if due:
        # robust: the change is committed by then; a failure here must not turn it into a 500.
        transaction.on_commit(partial(_enqueue_keys, due), robust=True)
    return rows


def _patient_channels(appointment: Appointment, kind: str, *, urgent: bool = False) -> list[str]:
    patient = appointment.patient
    available: list[str] = [
        c
        for c, present in ((Channel.EMAIL, patient.email), (Channel.SMS, patient.phone))
        if present
    ]
    if urgent or kind in URGENT_KINDS:
        return available
    if kind == Kind.REMINDER:
        return available[-1:]  # an SMS when there is a phone: reminders are read on the go
    return available[:1]  # email first, SMS for those without one


def _changed_by_patient(kind: str, appointment: Appointment) -> bool:
    if kind == Kind.CANCELLATION:
        return appointment.cancelled_by == Appointment.CancelledBy.PATIENT
    previous = appointment.rescheduled_from if kind == Kind.RESCHEDULE else None
    return previous is not None and previous.cancelled_by == Appointment.CancelledBy.PATIENT


def appointment_messages(*, kind: str, appointment: Appointment) -> list[Notification]:
    """Unsaved rows telling the patient what happened to their appointment. A change the patient
    made is also told to the practitioner (their agenda changed); a change the practice made
    reaches the patient on every channel they have, since they did not expect it."""
    by_patient = _changed_by_patient(kind, appointment)
    urgent = kind == Kind.RESCHEDULE and not by_patient
    rows = [
        outbox_row(
            kind=kind,
            channel=channel,
            recipient=Recipient.PATIENT,
            key=f"{kind}:{appointment.pk}:patient:{channel}",
            appointment=appointment,
        )
        for channel in _patient_channels(appointment, kind, urgent=urgent)
    ]
    practice_told = kind in {Kind.CANCELLATION, Kind.RESCHEDULE}
    if practice_told and by_patient and appointment.practitioner.user_id:
        rows.append(
            outbox_row(
                kind=kind,
                channel=Channel.EMAIL,
                recipient=Recipient.PRACTITIONER,
                key=f"{kind}:{appointment.pk}:practitioner:email",
                appointment=appointment,
            )
        )
    return rows


def notify_appointment(*, kind: str, appointment: Appointment) -> list[Notification]:
    return queue(appointment_messages(kind=kind, appointment=appointment))


def reminder_due(start: datetime, *, hours: int, tz: Any) -> datetime:
    """When a reminder `hours` before `start` goes out. Whole days are counted on the practice's
    wall clock, so the reminder of a Monday 09:00 appointment after a DST change still goes out
    on Sunday at 09:00 local time, not at 08:00 or 10:00. Other spans are elapsed hours."""
    if hours % 24:
        # In UTC: arithmetic on a datetime carrying a zone (as bookings pass it) is wall-clock
        # arithmetic, an hour off when the span crosses a DST change.
        return (start.astimezone(UTC) - timedelta(hours=hours)).astimezone(start.tzinfo)
    local = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=hours // 24)
    return local.replace(tzinfo=tz).astimezone(start.tzinfo)


def reminders_for(*, appointment: Appointment) -> list[Notification]:
    """Unsaved reminder rows, each scheduled for its due time."""
    practitioner = appointment.practitioner
    if not practitioner.reminders_enabled:
        return []
    now = timezone.now()
    rows = []
    for hours in sorted({int(h) for h in practitioner.reminder_hours or [] if int(h) > 0}):
        due = reminder_due(appointment.start, hours=hours, tz=practitioner.practice.tz)
        if due <= now:
            continue  # booked too late for this one: a reminder after the fact helps nobody
        rows += [
            outbox_row(
                kind=Kind.REMINDER,
                channel=channel,
                recipient=Recipient.PATIENT,
                key=f"reminder:{appointment.pk}:{hours}h:{channel}",
                appointment=appointment,
                scheduled_for=due,
            )
            for channel in _patient_channels(appointment, Kind.REMINDER)
        ]
    return rows


def schedule_reminders(*, appointment: Appointment) -> list[Notification]:
    return queue(reminders_for(appointment=appointment))


def cancel_pending_reminders(*, appointment: Appointment) -> int:
    return Notification.objects.filter(
        appointment=appointment, kind=Kind.REMINDER, status=Notification.Status.PENDING
    ).update(status=Notification.Status.CANCELLED, last_error="appointment no longer booked")


def notify_waitlist_offer(*, offer: WaitlistOffer) -> list[Notification]:
    appointment = offer.entry.appointment
    rows = [
        outbox_row(
            kind=Kind.WAITLIST_OFFER,
            channel=channel,
            recipient=Recipient.PATIENT,
            key=f"waitlist_offer:{offer.pk}:{channel}",
            appointment=appointment,
            waitlist_offer=offer,
        )
        for channel in _patient_channels(appointment, Kind.WAITLIST_OFFER)
    ]
    return queue(rows)


def notify_security_alert(
    *, users: list[Any], key: str, summary_en: str, summary_fr: str, details_path: str
) -> list[Notification]:
    """An email to each user (admins, practitioners). The summaries must hold no personal data."""
    rows = [
        outbox_row(
            kind=Kind.SECURITY_ALERT,
            channel=Channel.EMAIL,
            recipient=Recipient.USER,
            key=f"security_alert:{key}:user:{user.pk}",
            recipient_user=user,
            context={
                "summary_en": summary_en,
                "summary_fr": summary_fr,
                "details_path": details_path,
            },
        )
        for user in users
    ]
    return queue(rows)


# --- Personal data breach (GDPR article 34), written by privacy.services ---------------------


def breach_key(*, report_id: int, recipient: str, recipient_id: int) -> str:
    """One message per breach report and person, whatever the channel: a second run of the same
    report, or a patient who added an email in between, sends nothing more."""
    return f"breach:{report_id}:{recipient}:{recipient_id}"


def breach_patient_message(
    *, report_id: int, appointment: Appointment, context: dict[str, Any]
) -> Notification | None:
    """The patient's notice, by email, or by SMS for a patient without one; None without either.
    It hangs on one of their affected appointments, through which delivery finds the address
    and language. `context`: counts, dates and flags only."""
    channels = _patient_channels(appointment, Kind.BREACH)
    if not channels:
        return None
    return outbox_row(
        kind=Kind.BREACH,
        channel=channels[0],
        recipient=Recipient.PATIENT,
        key=breach_key(
            report_id=report_id, recipient=Recipient.PATIENT, recipient_id=appointment.patient_id
        ),
        appointment=appointment,
        context=context,
    )


def breach_practitioner_message(
    *, report_id: int, practitioner_id: int, user: Any, context: dict[str, Any]
) -> Notification:
    """The practitioner's notice, by email to their account: how many of their patients."""
    return outbox_row(
        kind=Kind.BREACH,
        channel=Channel.EMAIL,
        recipient=Recipient.PRACTITIONER,
        key=breach_key(
            report_id=report_id, recipient=Recipient.PRACTITIONER, recipient_id=practitioner_id
        ),
        recipient_user=user,
        context=context,
    )
