"""What each message says: language, the practice's timezone, no visit reason or specialty where a
lock screen or a shared inbox shows it, the .ics, the Message-ID, a relative's name. It is Monday
1 June 2026, 08:00 in Paris (`frozen_now`); the appointment is Tuesday 2 June, 09:00 there."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from icalendar import Calendar

from accounts.models import Role
from booking.models import Appointment, WaitlistEntry
from booking.services import book_appointment, reschedule_appointment
from notifications.delivery import deliver
from notifications.messages import Message, build_message
from notifications.models import Notification
from notifications.services import notify_appointment, notify_security_alert, outbox_row
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    PracticeFactory,
    PractitionerFactory,
    RelativeFactory,
    SpecialtyFactory,
    UserFactory,
    VisitReasonFactory,
    WaitlistEntryFactory,
    WaitlistOfferFactory,
    make_actor,
)

Kind = Notification.Kind
Channel = Notification.Channel
Recipient = Notification.Recipient
REASON = "Dépistage VIH"
SPECIALTY = "Psychiatrie"
TUESDAY_9_IN_PARIS = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)

# Every message an appointment can cause: (kind, channel, recipient).
APPOINTMENT_MESSAGES = [
    (Kind.CONFIRMATION, Channel.EMAIL, Recipient.PATIENT),
    (Kind.CONFIRMATION, Channel.SMS, Recipient.PATIENT),
    (Kind.CANCELLATION, Channel.EMAIL, Recipient.PATIENT),
    (Kind.CANCELLATION, Channel.SMS, Recipient.PATIENT),
    (Kind.CANCELLATION, Channel.EMAIL, Recipient.PRACTITIONER),
    (Kind.RESCHEDULE, Channel.EMAIL, Recipient.PATIENT),
    (Kind.RESCHEDULE, Channel.SMS, Recipient.PATIENT),
    (Kind.REMINDER, Channel.EMAIL, Recipient.PATIENT),
    (Kind.REMINDER, Channel.SMS, Recipient.PATIENT),
    (Kind.WAITLIST_OFFER, Channel.EMAIL, Recipient.PATIENT),
    (Kind.WAITLIST_OFFER, Channel.SMS, Recipient.PATIENT),
]
EMAIL_MESSAGES = [m for m in APPOINTMENT_MESSAGES if m[1] == Channel.EMAIL]


@pytest.fixture
def appointment(frozen_now, db) -> Appointment:
    """A psychiatrist's HIV screening: both would tell too much on a lock screen."""
    practitioner = PractitionerFactory(
        specialty=SpecialtyFactory(name=SPECIALTY, slug="psychiatrie")
    )
    reason = VisitReasonFactory(practitioner=practitioner, label=REASON)
    return AppointmentFactory(practitioner=practitioner, reason=reason, start=TUESDAY_9_IN_PARIS)


def message_for(
    appointment: Appointment, kind: str, channel: str, recipient: str = Recipient.PATIENT
) -> Message:
    offer = None
    if kind == Kind.WAITLIST_OFFER:
        entry = WaitlistEntry.objects.filter(appointment=appointment).first()
        entry = entry or WaitlistEntryFactory(appointment=appointment)
        offer = entry.offers.first() or WaitlistOfferFactory(entry=entry)
    row = outbox_row(
        kind=kind,
        channel=channel,
        recipient=recipient,
        key=f"{kind}:{appointment.pk}:{recipient}:{channel}",
        appointment=appointment,
        waitlist_offer=offer,
    )
    row.save()
    return build_message(Notification.objects.get(pk=row.pk))


def speaks(appointment: Appointment, language: str) -> None:
    user = appointment.patient.user
    user.language = language
    user.save(update_fields=["language"])
    practitioner_user = appointment.practitioner.user
    practitioner_user.language = language
    practitioner_user.save(update_fields=["language"])


def ics_event(attachment: Any) -> Any:
    filename, content, mimetype = attachment
    assert (filename, mimetype) == ("rendez-vous.ics", "text/calendar")
    (event,) = Calendar.from_ical(content).walk("VEVENT")
    return event


# --- Language and time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "when"),
    [
        ("fr", "Votre rendez-vous du 2 juin est confirmé", "mardi 2 juin 2026, 09:00"),
        ("en", "Your appointment on 2 June is confirmed", "Tuesday 2 June 2026, 09:00"),
    ],
)
def test_confirmation_is_written_in_the_patients_language(appointment, language, subject, when):
    speaks(appointment, language)

    message = message_for(appointment, Kind.CONFIRMATION, Channel.EMAIL)

    assert message.subject == subject
    assert f"{when} (Europe/Paris)" in message.body


@pytest.mark.parametrize(("kind", "channel", "recipient"), APPOINTMENT_MESSAGES)
def test_every_message_has_a_french_and_an_english_version(appointment, kind, channel, recipient):
    texts = {}
    for language in ("fr", "en"):
        speaks(appointment, language)
        message = message_for(appointment, kind, channel, recipient)
        Notification.objects.all().delete()
        texts[language] = message.subject + message.body

    assert texts["fr"] != texts["en"]
    assert "juin" in texts["fr"]
    assert "June" in texts["en"]


def test_a_patient_without_an_account_gets_french(appointment):
    appointment.patient.user = None
    appointment.patient.save(update_fields=["user"])

    message = message_for(appointment, Kind.REMINDER, Channel.SMS)

    assert message.body.startswith("Creneau : rappel")


def test_times_are_in_the_practices_timezone(frozen_now, db):
    practice = PracticeFactory(timezone="America/New_York")
    appointment = AppointmentFactory(
        practitioner=PractitionerFactory(practice=practice), start=TUESDAY_9_IN_PARIS
    )
    speaks(appointment, "en")

    email = message_for(appointment, Kind.CONFIRMATION, Channel.EMAIL)
    sms = message_for(appointment, Kind.REMINDER, Channel.SMS)

    assert "Tuesday 2 June 2026, 03:00 (America/New_York)" in email.body
    assert "Tuesday 2 June 2026, 03:00" in sms.body
    assert "09:00" not in email.body + sms.body


def test_the_day_in_the_subject_is_the_practices_day(frozen_now, db):
    practice = PracticeFactory(timezone="America/New_York")
    # Wednesday 3 June, 03:00 in Paris, but still Tuesday 2 June, 21:00 in New York.
    start = datetime(2026, 6, 3, 1, 0, tzinfo=UTC)
    appointment = AppointmentFactory(
        practitioner=PractitionerFactory(practice=practice), start=start
    )
    speaks(appointment, "en")

    message = message_for(appointment, Kind.CONFIRMATION, Channel.EMAIL)

    assert message.subject == "Your appointment on 2 June is confirmed"
    assert "Tuesday 2 June 2026, 21:00 (America/New_York)" in message.body


# --- What a lock screen or a shared inbox shows ---------------------------------------------


def tells_nothing_medical(text: str) -> bool:
    lowered = text.casefold()
    return REASON.casefold() not in lowered and SPECIALTY.casefold() not in lowered


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(("kind", "channel", "recipient"), APPOINTMENT_MESSAGES)
def test_subjects_and_sms_never_name_the_reason_or_the_specialty(
    appointment, kind, channel, recipient, language
):
    speaks(appointment, language)

    message = message_for(appointment, kind, channel, recipient)

    assert message.body
    shown = message.body if channel == Channel.SMS else message.subject
    assert shown
    assert tells_nothing_medical(shown)
    for attachment in message.attachments:
        assert tells_nothing_medical(str(ics_event(attachment).get("summary")))


def test_security_alert_has_a_subject_and_no_appointment(frozen_now, db):
    admin = UserFactory(role=Role.ADMIN, language="en")
    (row,) = notify_security_alert(
        users=[admin],
        key="test-alert",
        summary_en="Unusual sign-ins.",
        summary_fr="Connexions inhabituelles.",
        details_path="/audit/alerts/1/",
    )

    message = build_message(Notification.objects.get(idempotency_key=row.idempotency_key))

    assert message.subject == "Creneau security alert"
    assert "Unusual sign-ins." in message.body
    assert message.to == admin.email


# --- Calendar and Message-ID ----------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.CONFIRMATION, Kind.RESCHEDULE])
def test_confirmation_and_reschedule_emails_carry_a_valid_ics(appointment, kind):
    message = message_for(appointment, kind, Channel.EMAIL)

    (attachment,) = message.attachments
    event = ics_event(attachment)
    assert event.decoded("dtstart") == appointment.start
    assert event.decoded("dtend") == appointment.end
    assert str(event.get("summary")) == f"Rendez-vous avec {appointment.practitioner}"
    assert str(event.get("status")) == "CONFIRMED"


@pytest.mark.parametrize("kind", [Kind.CANCELLATION, Kind.REMINDER, Kind.WAITLIST_OFFER])
def test_other_emails_carry_no_ics(appointment, kind):
    assert message_for(appointment, kind, Channel.EMAIL).attachments == []


def test_a_rescheduled_appointment_moves_the_calendar_event_instead_of_adding_one(
    clinic, django_capture_on_commit_callbacks
):
    actor = make_actor(clinic.patient.user)
    with django_capture_on_commit_callbacks(execute=True):
        first = book_appointment(
            actor=actor,
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=clinic.slot,
            patient=clinic.patient,
        )
    with django_capture_on_commit_callbacks(execute=True):
        moved = reschedule_appointment(
            actor=actor, appointment_id=first.pk, start=clinic.slot + timedelta(hours=2)
        )

    with_calendar = [email for email in mail.outbox if email.attachments]  # not the practice's
    confirmation, reschedule = (ics_event(email.attachments[0]) for email in with_calendar)
    assert reschedule.decoded("dtstart") == moved.start == clinic.slot + timedelta(hours=2)
    assert str(reschedule.get("uid")) == str(confirmation.get("uid"))
    assert reschedule.decoded("sequence") > confirmation.decoded("sequence", 0)


def test_message_id_derives_from_the_idempotency_key(appointment):
    (row,) = notify_appointment(kind=Kind.CONFIRMATION, appointment=appointment)
    notification = Notification.objects.get(idempotency_key=row.idempotency_key)

    deliver([notification.pk])
    # The worker died after sending: the row is handed out again and sent a second time.
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENDING, claimed_until=appointment.start - timedelta(days=2)
    )
    deliver([notification.pk])

    expected = f"<confirmation.{appointment.pk}.patient.email@127.0.0.1>"  # CRENEAU_BASE_URL's host
    assert [email.message()["Message-ID"] for email in mail.outbox] == [expected, expected]


# --- Relatives ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "channel", "recipient"), APPOINTMENT_MESSAGES)
def test_a_relatives_name_is_in_the_patients_email_body_only(appointment, kind, channel, recipient):
    relative = RelativeFactory(managed_by=appointment.patient)
    Appointment.objects.filter(pk=appointment.pk).update(relative=relative)
    appointment.refresh_from_db()

    message = message_for(appointment, kind, channel, recipient)

    in_body = channel == Channel.EMAIL and recipient == Recipient.PATIENT
    assert (relative.full_name in message.body) is in_body
    assert relative.full_name not in message.subject
    for _filename, content, _mimetype in message.attachments:
        assert relative.full_name not in content.decode().replace("\r\n ", "")  # unfolded


def test_no_message_names_the_patient(appointment):
    patient = PatientFactory(first_name="Zéphyrine", last_name="Quibbleworth")
    Appointment.objects.filter(pk=appointment.pk).update(patient=patient)
    appointment.refresh_from_db()

    texts = []
    for kind, channel, recipient in APPOINTMENT_MESSAGES:
        message = message_for(appointment, kind, channel, recipient)
        texts.append(message.subject + message.body)
        Notification.objects.all().delete()

    assert not any("Zéphyrine" in text or "Quibbleworth" in text for text in texts)
