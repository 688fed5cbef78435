"""Turn an outbox row into the message to send, at send time.

Addresses and language are read now, not when the row was written, so a corrected email or an
erased account is honoured. Subjects and SMS carry no visit reason or specialty: that alone can
reveal health data to whoever sees a lock screen or a shared inbox.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, translation

from booking.models import Appointment, WaitlistOffer
from notifications.calendar import appointment_ics, site_domain
from notifications.models import Notification

ICS_KINDS = {Notification.Kind.CONFIRMATION, Notification.Kind.RESCHEDULE}
SUMMARY = {"fr": "Rendez-vous avec {}", "en": "Appointment with {}"}


class NothingToSend(Exception):
    """The row no longer needs sending: no address any more, or it lost its purpose (a reminder of
    a cancelled appointment, an offer already taken)."""


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Recipient:
    address: str
    language: str
    relative_name: str = ""


def absolute(path: str) -> str:
    return settings.CRENEAU_BASE_URL.rstrip("/") + path


def message_id(idempotency_key: str) -> str:
    """Derived from the idempotency key: a resend after a worker died mid-send carries the same
    Message-ID, and the recipient's client treats it as the message it already has."""
    return f"<{idempotency_key.replace(':', '.')}@{site_domain()}>"


def _appointment(notification: Notification) -> Appointment | None:
    if notification.waitlist_offer_id is not None:
        return notification.waitlist_offer.entry.appointment  # type: ignore[union-attr]
    return notification.appointment


def _ensure_still_relevant(notification: Notification, appointment: Appointment | None) -> None:
    kind = notification.kind
    if kind == Notification.Kind.REMINDER and (
        appointment is None or appointment.status != Appointment.Status.BOOKED
    ):
        raise NothingToSend("appointment no longer booked")
    offer = notification.waitlist_offer
    if kind == Notification.Kind.WAITLIST_OFFER and (
        offer is None or offer.status != WaitlistOffer.Status.OFFERED
    ):
        raise NothingToSend("offer no longer open")


def _recipient(notification: Notification, appointment: Appointment | None) -> Recipient:
    email = notification.channel == Notification.Channel.EMAIL
    if notification.recipient == Notification.Recipient.PATIENT and appointment is not None:
        patient = appointment.patient
        language = patient.user.language if patient.user else settings.LANGUAGE_CODE
        relative = appointment.relative.full_name if appointment.relative else ""
        return Recipient((patient.email if email else patient.phone) or "", language, relative)
    user = notification.recipient_user
    if notification.recipient == Notification.Recipient.PRACTITIONER and appointment is not None:
        user = appointment.practitioner.user
    if user is None or not user.is_active or not email:
        return Recipient("", settings.LANGUAGE_CODE)
    return Recipient(user.email, user.language)


def _when(moment: datetime, tz: Any) -> str:
    return formats.date_format(moment.astimezone(tz), "l j F Y, H:i")


def _context(notification: Notification, appointment: Appointment | None) -> dict[str, Any]:
    context: dict[str, Any] = dict(notification.context)
    context["details_url"] = absolute(context.get("details_path", "/"))
    if appointment is None:
        return context
    practitioner, practice = appointment.practitioner, appointment.practitioner.practice
    tz = practice.tz
    start = appointment.start
    offer = notification.waitlist_offer
    if offer is not None:
        start = offer.start
        context["current"] = _when(appointment.start, tz)
        context["expires"] = formats.date_format(offer.expires_at.astimezone(tz), "H:i")
        context["offer_url"] = absolute(reverse("waitlist-offer", args=[offer.pk]))
    context.update(
        practitioner=str(practitioner),
        day=formats.date_format(start.astimezone(tz), "j F"),
        when=_when(start, tz),
        tz=practice.timezone,
        place=f"{practice.name}, {practice.address}, {practice.postcode} {practice.city}",
        manage_url=absolute(reverse("my-appointments")),
        book_url=absolute(practitioner.get_absolute_url()),
        agenda_url=absolute("/agenda/"),
    )
    if appointment.rescheduled_from is not None:
        context["previous"] = _when(appointment.rescheduled_from.start, tz)
    if (
        notification.kind == Notification.Kind.CANCELLATION
        and appointment.cancelled_by == Appointment.CancelledBy.PRACTICE
    ):
        # Written by the practice for the patient: in the email's body, never in a subject or
        # an SMS, which a lock screen shows.
        context["cancellation_reason"] = appointment.cancellation_reason
    return context


def build_message(notification: Notification) -> Message:
    """Raises NothingToSend when the row should be closed without sending."""
    appointment = _appointment(notification)
    _ensure_still_relevant(notification, appointment)
    recipient = _recipient(notification, appointment)
    if not recipient.address:
        raise NothingToSend("no address for this channel")
    language = recipient.language if recipient.language in {"fr", "en"} else "fr"
    sms = notification.channel == Notification.Channel.SMS
    name = f"{notification.kind}_{notification.recipient}{'.sms' if sms else ''}.{language}.txt"
    with translation.override(language):
        context = _context(notification, appointment)
        context["for_relative"] = recipient.relative_name
        text = render_to_string(f"notifications/{name}", context).strip()
    if sms:
        return Message(to=recipient.address, subject="", body=text)
    subject_line, _, body = text.partition("\n")
    attachments = []
    for_patient = notification.recipient == Notification.Recipient.PATIENT
    if notification.kind in ICS_KINDS and for_patient and appointment is not None:
        summary = SUMMARY[language].format(appointment.practitioner)
        ics = appointment_ics(appointment, summary=summary)
        attachments.append(("rendez-vous.ics", ics, "text/calendar"))
    return Message(
        to=recipient.address,
        subject=subject_line.removeprefix("Subject:").strip(),
        body=body.strip() + "\n",
        attachments=attachments,
    )
