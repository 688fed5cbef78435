"""The right to erasure (GDPR art. 17) and the erasure of inactive accounts.

What goes: every personal field of the patient and their relatives (names, birth date, email,
phone, and the blind indexes that would find them again), the account's email and password, its
sessions, second-factor devices, API tokens and login-lockout records.

What stays, pseudonymised: the Patient row (marked `erased_at`), relatives who had appointments,
and the appointments themselves. Past appointments are the practitioners' records, and the audit
log (append-only, ids only) names them by id; the User row stays too, as the audit log's actor
ids point at it. None of them can be tied back to a person any more.

Future appointments are cancelled through booking.services first, as the patient (so the
practitioner is told through the outbox and each cancellation is audited). One inside the
practitioner's cancellation notice makes the whole erasure fail with TooLateToCancel: the
practice must not lose a patient it expects within hours without being able to reach them.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import DateTimeField, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import Role, SecondFactorLock, User
from accounts.services import end_all_sessions
from audit.actors import Actor, system_actor
from audit.models import Action, Channel
from audit.services import AppointmentRef, record_access
from booking.errors import DomainError
from booking.models import Appointment, WaitlistEntry, WaitlistOffer
from booking.services import cancel_appointment
from notifications.models import Notification
from patients.models import Patient, Relative

logger = logging.getLogger(__name__)

# Stored on the cancelled appointments; the practitioner's message says "cancelled by the
# patient" and nothing more.
CANCELLATION_REASON = "account deleted"
ERASED_EMAIL_DOMAIN = "invalid"  # RFC 2606: can never receive mail


@dataclass(frozen=True)
class Erasure:
    patient_id: int | None
    cancelled: list[int] = field(default_factory=list)
    kept_appointments: int = 0


def erased_email() -> str:
    """A unique, non-personal placeholder: the email column is unique through its index."""
    return f"deleted-{uuid.uuid4().hex}@{ERASED_EMAIL_DOMAIN}"


@transaction.atomic
def erase_account(*, actor: Actor, user: User, why: str = "at the patient's request") -> Erasure:
    """Cancel the future appointments, then erase everything personal about `user`'s account,
    their patient file and their relatives, in one transaction. Raises TooLateToCancel (nothing
    changed) when an appointment is too close to be cancelled by the patient."""
    user = User.objects.select_for_update().get(pk=user.pk)
    patient = Patient.objects.select_for_update().filter(user=user).first()
    erasure = Erasure(patient_id=None)
    if patient is not None:
        # First, while the account is still active: the patient cancels as themself.
        cancelled = _cancel_future_appointments(actor=actor, patient=patient)
        _close_waiting_list(patient)
        _drop_pending_messages(patient=patient, user=user)
        _erase_relatives(patient)
        _erase_patient(patient)
        kept = Appointment.objects.filter(patient=patient).exclude(pk__in=cancelled).count()
        erasure = Erasure(patient_id=patient.pk, cancelled=cancelled, kept_appointments=kept)
    _erase_user(user)
    record_access(
        actor=actor,
        action=Action.UPDATE,
        appointments=[AppointmentRef(id=None, patient_id=erasure.patient_id)],
        detail=f"personal data erased ({why})",
    )
    return erasure


def _cancel_future_appointments(*, actor: Actor, patient: Patient) -> list[int]:
    upcoming = Appointment.objects.filter(
        patient=patient, status=Appointment.Status.BOOKED, start__gt=timezone.now()
    ).order_by("start", "pk")
    cancelled = []
    for appointment_id in upcoming.values_list("pk", flat=True):
        cancel_appointment(actor=actor, appointment_id=appointment_id, reason=CANCELLATION_REASON)
        cancelled.append(appointment_id)
    return cancelled


def _close_waiting_list(patient: Patient) -> None:
    entries = WaitlistEntry.objects.filter(appointment__patient=patient)
    WaitlistOffer.objects.filter(entry__in=entries, status=WaitlistOffer.Status.OFFERED).update(
        status=WaitlistOffer.Status.EXPIRED
    )
    entries.filter(active=True).update(active=False)


def _drop_pending_messages(*, patient: Patient, user: User) -> None:
    """Messages to the patient that have not left yet never will: there is no address any more.
    Those to the practitioner (the cancellations just queued) go out as planned."""
    Notification.objects.filter(
        Q(recipient=Notification.Recipient.PATIENT, appointment__patient=patient)
        | Q(recipient_user=user),
        status=Notification.Status.PENDING,
    ).update(status=Notification.Status.CANCELLED, last_error="account erased")


def _erase_relatives(patient: Patient) -> None:
    booked = Appointment.objects.filter(relative=OuterRef("pk"))
    relatives = Relative.objects.filter(managed_by=patient).annotate(booked=Exists(booked))
    relatives.filter(booked=False).delete()
    for relative in relatives.filter(booked=True):
        # Attributes, not column updates: the encrypted fields decide how "nothing" is stored.
        relative.first_name = ""
        relative.last_name = ""
        relative.birth_date = None
        relative.save(update_fields=["first_name", "last_name", "birth_date"])


def _erase_patient(patient: Patient) -> None:
    patient.first_name = ""
    patient.last_name = ""
    patient.birth_date = None
    patient.phone = ""
    patient.email = ""
    patient.erased_at = timezone.now()
    patient.inactivity_warned_at = None
    # The blind indexes follow their (now empty) sources and become NULL.
    patient.save(
        update_fields=[
            "first_name",
            "last_name",
            "birth_date",
            "phone",
            "phone_index",
            "email",
            "email_index",
            "erased_at",
            "inactivity_warned_at",
        ]
    )


def _erase_user(user: User) -> None:
    old_index = user.email_index
    user.email = erased_email()
    user.set_unusable_password()
    user.is_active = False
    user.two_factor_enabled = False
    user.save(update_fields=["email", "email_index", "password", "is_active", "two_factor_enabled"])
    end_all_sessions(user=user)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    SecondFactorLock.objects.filter(user=user).delete()
    for token_model in (
        get_access_token_model(),
        get_refresh_token_model(),
        get_id_token_model(),
        get_grant_model(),
    ):
        token_model.objects.filter(user=user).delete()
    if old_index:
        # django-axes keys failed logins by the email's blind index (accounts.lockout).
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=old_index).delete()


# --- Inactive accounts (purge_expired) ------------------------------------------------------


@dataclass(frozen=True)
class InactivePurge:
    warned: int = 0
    erased: int = 0
    skipped: int = 0  # an appointment too close to cancel: tried again at the next run


PURGE_ACTOR = system_actor("purge_expired", channel=Channel.COMMAND)


def inactive_accounts(*, now: datetime, days: int) -> QuerySet[User]:
    """Active patient accounts with neither a login nor an appointment in the last `days`.

    An account that never logged in counts from its creation; an appointment counts by its date,
    so an upcoming one (booked on the phone, say) keeps the account alive.
    """
    last_activity = Greatest(
        Coalesce("last_login", "date_joined"),
        Coalesce(Max("patient__appointments__start"), "date_joined"),
        output_field=DateTimeField(),
    )
    return (
        User.objects.filter(
            role=Role.PATIENT,
            is_active=True,
            patient__isnull=False,
            patient__erased_at__isnull=True,
        )
        .annotate(last_activity=last_activity)
        .filter(last_activity__lt=now - timedelta(days=days))
    )


def purge_inactive_accounts(*, now: datetime | None = None) -> InactivePurge:
    """Warn the accounts that will be erased in ACCOUNT_INACTIVE_WARNING_DAYS, and erase those
    warned that long ago that stayed inactive (CNIL: 3 years without contact for prospects and
    accounts; the warning gives the person a chance to keep their account by logging in)."""
    now = now or timezone.now()
    inactive_days = settings.ACCOUNT_INACTIVE_DAYS
    notice = timedelta(days=settings.ACCOUNT_INACTIVE_WARNING_DAYS)
    warned = erased = skipped = 0
    candidates = inactive_accounts(now=now, days=inactive_days - notice.days).select_related(
        "patient"
    )
    for user in candidates:
        patient: Patient = user.patient  # type: ignore[attr-defined]
        last_activity: datetime = user.last_activity  # type: ignore[attr-defined]
        warned_at = patient.inactivity_warned_at
        # A login or an appointment after the warning voids it.
        if warned_at is None or warned_at <= last_activity:
            warned += _warn(user=user, patient=patient, now=now)
        elif warned_at <= now - notice and last_activity < now - timedelta(days=inactive_days):
            if _erase_inactive(user):
                erased += 1
            else:
                skipped += 1
    return InactivePurge(warned=warned, erased=erased, skipped=skipped)


def _warn(*, user: User, patient: Patient, now: datetime) -> int:
    """Send the warning, then remember it: a failed send is tried again at the next run, and
    the erasure clock starts only once a warning went out."""
    language = user.language if user.language in {"fr", "en"} else "fr"
    context = {
        "days": settings.ACCOUNT_INACTIVE_WARNING_DAYS,
        "login_url": settings.CRENEAU_BASE_URL.rstrip("/") + "/accounts/login/",
        "data_url": settings.CRENEAU_BASE_URL.rstrip("/") + "/me/data/",
    }
    with translation.override(language):
        text = render_to_string(f"patients/email/inactive_warning.{language}.txt", context)
    subject, _, body = text.strip().partition("\n")
    try:
        send_mail(subject.removeprefix("Subject:").strip(), body.strip() + "\n", None, [user.email])
    except OSError:
        logger.warning("inactivity warning to user %s not sent; retried at the next run", user.pk)
        return 0
    Patient.objects.filter(pk=patient.pk).update(inactivity_warned_at=now)
    return 1


def _erase_inactive(user: User) -> bool:
    try:
        erase_account(actor=PURGE_ACTOR, user=user, why="account inactive")
    except DomainError:
        logger.warning("inactive user %s not erased: an appointment is too close", user.pk)
        return False
    return True
