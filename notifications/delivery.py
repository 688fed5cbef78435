"""Delivering outbox rows: claim by compare-and-swap, send outside any transaction, record.

At most once per row: a row is sent only by the worker whose claim moved it from pending to
sending. A worker that dies mid-send leaves the row "sending" with an expired claim; the relay
hands it out again, and the idempotency key travels with the message (Message-ID for email, the
provider's idempotency key for SMS) so the provider or the recipient's client drops a repeat.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.actors import system_actor
from audit.models import Action, Channel
from audit.services import record_access
from notifications.messages import Message, NothingToSend, build_message, message_id
from notifications.models import Notification
from notifications.sms import SmsMessage, get_sms_backend

logger = logging.getLogger(__name__)

Status = Notification.Status
DELIVERY_ACTOR = system_actor("notifications.deliver", channel=Channel.TASK)


@dataclass
class Outcome:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("sent", "retried", "failed", "dropped")}


def claimable(now: datetime) -> Q:
    due = Q(status=Status.PENDING, scheduled_for__lte=now)
    abandoned = Q(status=Status.SENDING, claimed_until__lt=now)  # its worker died mid-send
    return due | abandoned


@transaction.atomic
def claim(ids: Iterable[int]) -> list[Notification]:
    """Move due rows to "sending" for this worker. SKIP LOCKED: two workers handed the same ids
    split them instead of queueing; SQLite's IMMEDIATE transactions serialize the same way."""
    now = timezone.now()
    rows = list(
        Notification.objects.select_for_update(skip_locked=True)
        .filter(claimable(now), pk__in=list(ids))
        .values_list("pk", flat=True)
    )
    claim_for = timedelta(seconds=settings.NOTIFICATIONS_CLAIM_SECONDS)
    Notification.objects.filter(pk__in=rows).update(
        status=Status.SENDING, claimed_until=now + claim_for, attempts=F("attempts") + 1
    )
    claimed = list(
        Notification.objects.filter(pk__in=rows).select_related(
            "appointment__practitioner__practice",
            "appointment__practitioner__user",
            "appointment__patient__user",
            "appointment__relative",
            "appointment__rescheduled_from",
            "waitlist_offer__entry__appointment",
            "recipient_user",
        )
    )
    # Building the messages reads appointment data: recorded like any other access.
    # One event per appointment, however many of its messages (email, SMS, practitioner) go out.
    read = {n.appointment_id: n.appointment for n in claimed if n.appointment is not None}
    appointments = list(read.values())
    if appointments:
        record_access(actor=DELIVERY_ACTOR, action=Action.VIEW, appointments=appointments)
    return claimed


def backoff(attempts: int) -> timedelta:
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def _finish(notification: Notification, **changes: object) -> bool:
    """Whether this worker still held the row. Only the claim holder may finish it: the status
    and the claim's deadline are the second half of the swap, so a worker whose claim expired
    (and was taken over by another) cannot overwrite the new holder's outcome."""
    updated = Notification.objects.filter(
        pk=notification.pk, status=Status.SENDING, claimed_until=notification.claimed_until
    ).update(claimed_until=None, **changes)
    return updated == 1


def _record_error(notification: Notification, error: Exception, outcome: Outcome) -> None:
    # The exception type only: a provider's message may quote the address or the text.
    text = type(error).__name__
    if notification.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        if _finish(notification, status=Status.FAILED, last_error=text):
            outcome.failed.append(notification.pk)
            logger.warning(
                "notification %s failed after %s attempts", notification.pk, notification.attempts
            )
        return
    retry_at = timezone.now() + backoff(notification.attempts)
    if _finish(notification, status=Status.PENDING, scheduled_for=retry_at, last_error=text):
        outcome.retried.append(notification.pk)


def _email(notification: Notification, message: Message) -> EmailMessage:
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        to=[message.to],
        headers={"Message-ID": message_id(notification.idempotency_key)},
    )
    for name, content, mimetype in message.attachments:
        email.attach(name, content, mimetype)
    return email


# One connection (or provider client) for the batch, and one message per call unless the backend
# declares `atomic_batches`: a provider that fails on the k-th message of a batched call (SMTP
# does) has already sent the ones before it, and retrying them one by one would send them twice.


def _sent_in_one_call(
    send_all: Callable[[], object],
    backend: object,
    batch: list[tuple[Notification, Message]],
    outcome: Outcome,
) -> bool:
    """Whether the batch went out in one call. Tried only when the backend declares that a failed
    call may be retried message by message without sending anything twice; on failure the
    caller does that, to find the message at fault without blocking the others."""
    if len(batch) < 2 or not getattr(backend, "atomic_batches", False):
        return False
    try:
        send_all()
    except Exception:
        return False
    _finish_sent([notification for notification, _message in batch], outcome)
    return True


def _finish_sent(notifications: list[Notification], outcome: Outcome) -> None:
    """Mark a batch sent in one UPDATE per claim (a claim gives all its rows one deadline)."""
    by_claim: dict[datetime | None, list[int]] = {}
    for notification in notifications:
        by_claim.setdefault(notification.claimed_until, []).append(notification.pk)
    now = timezone.now()
    for claimed_until, ids in by_claim.items():
        held = Notification.objects.filter(
            pk__in=ids, status=Status.SENDING, claimed_until=claimed_until
        )
        held_ids = list(held.values_list("pk", flat=True))
        held.update(status=Status.SENT, sent_at=now, claimed_until=None, last_error="")
        outcome.sent.extend(held_ids)


def _send_emails(batch: list[tuple[Notification, Message]], outcome: Outcome) -> None:
    connection = get_connection()
    try:
        connection.open()  # kept open across the calls below (SMTP closes what it opened itself)
    except Exception as error:  # server unreachable: every row of the batch is retried
        for notification, _message in batch:
            _record_error(notification, error, outcome)
        return

    def send(notification: Notification, message: Message) -> object:
        return connection.send_messages([_email(notification, message)])

    def send_all() -> object:
        return connection.send_messages([_email(n, m) for n, m in batch])

    try:
        if _sent_in_one_call(send_all, connection, batch, outcome):
            return
        for notification, message in batch:
            _send_one(send, notification, message, outcome)
    finally:
        connection.close()


def _sms(notification: Notification, message: Message) -> SmsMessage:
    return SmsMessage(
        to=message.to, body=message.body, idempotency_key=notification.idempotency_key
    )


def _send_sms(batch: list[tuple[Notification, Message]], outcome: Outcome) -> None:
    try:
        backend = get_sms_backend()
    except Exception as error:
        for notification, _message in batch:
            _record_error(notification, error, outcome)
        return

    def send(notification: Notification, message: Message) -> object:
        return backend.send_messages([_sms(notification, message)])

    def send_all() -> object:
        return backend.send_messages([_sms(n, m) for n, m in batch])

    if _sent_in_one_call(send_all, backend, batch, outcome):
        return
    for notification, message in batch:
        _send_one(send, notification, message, outcome)


def _send_one(
    send: Callable[[Notification, Message], object],
    notification: Notification,
    message: Message,
    outcome: Outcome,
) -> None:
    try:
        send(notification, message)
    except Exception as error:  # any provider failure is retried, then marked failed
        _record_error(notification, error, outcome)
        return
    # Finished right after its own send, not at the end of the batch: a long batch must not
    # outlive the claims of the rows it has already sent.
    _finish(notification, status=Status.SENT, sent_at=timezone.now(), last_error="")
    outcome.sent.append(notification.pk)


def deliver(ids: Iterable[int]) -> Outcome:
    """Claim, build and send a batch of rows; rows others hold or that are done are skipped."""
    outcome = Outcome()
    emails: list[tuple[Notification, Message]] = []
    sms: list[tuple[Notification, Message]] = []
    for notification in claim(ids):
        try:
            message = build_message(notification)
        except NothingToSend as reason:
            _finish(notification, status=Status.CANCELLED, last_error=str(reason)[:300])
            outcome.dropped.append(notification.pk)
            continue
        target = sms if notification.channel == Notification.Channel.SMS else emails
        target.append((notification, message))
    if emails:
        _send_emails(emails, outcome)
    if sms:
        _send_sms(sms, outcome)
    return outcome


def due_ids(*, limit: int) -> list[int]:
    """Rows the relay should hand out: due and not handed out recently, or abandoned."""
    now = timezone.now()
    grace = now - timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    recently_queued = Q(status=Status.PENDING, enqueued_at__gt=grace)
    return list(
        Notification.objects.filter(claimable(now))
        .exclude(recently_queued)
        .order_by("scheduled_for", "id")
        .values_list("pk", flat=True)[:limit]
    )
