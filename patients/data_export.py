"""Everything Creneau holds about a patient, their relatives and their account (GDPR art. 15
and 20): for the /me/data/ page and its JSON download.

Appointments are read through booking.selectors' scoping and recorded as one EXPORT, in one
insert, before anything else is read, so the export's own access-log section includes it.
Message bodies are not kept (they are rendered at send time), so notifications come as kind,
channel and dates; a session's key is a credential and never leaves the server.
"""

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst

from accounts.models import User, UserSession
from accounts.two_factor import authenticator_for, backup_codes_left
from audit.access_log import describe, practitioner_names, secretaries_agendas
from audit.actors import Actor
from audit.models import AccessEvent, Action
from audit.services import AppointmentLike, AppointmentRef, record_access
from booking.models import Appointment
from booking.selectors import visible_appointments
from notifications.models import Notification
from patients.models import Patient, Relative

FORMAT = "creneau-personal-data/1"

Data = dict[str, Any]


@transaction.atomic
def personal_data(*, actor: Actor, patient: Patient, detail: str) -> Data:
    """The patient's data as plain values (datetimes stay datetimes: the page formats them,
    the JSON view writes ISO 8601). Records the export."""
    user = patient.user
    assert user is not None, "an export is for a patient with an account"  # noqa: S101
    appointments = list(
        visible_appointments(actor)
        .filter(patient=patient)
        .select_related(
            "practitioner__practice",
            "practitioner__specialty",
            "reason",
            "relative",
            "waitlist_entry",
        )
        .prefetch_related("waitlist_entry__offers")
        .order_by("start", "pk")
    )
    # With no appointment, one event still names the patient: the export happened.
    refs: list[AppointmentLike] = [*appointments] or [
        AppointmentRef(id=None, patient_id=patient.pk)
    ]
    record_access(actor=actor, action=Action.EXPORT, appointments=refs, detail=detail)
    return {
        "format": FORMAT,
        "generated_at": timezone.now(),
        "account": account_of(user),
        "profile": profile_of(patient),
        "relatives": [relative_of(r) for r in patient.relatives.order_by("pk")],  # type: ignore[attr-defined]
        "appointments": [appointment_of(a) for a in appointments],
        "waiting_list": [entry for a in appointments if (entry := waiting_of(a)) is not None],
        "notifications": notifications_of(patient=patient, user=user),
        "sessions": sessions_of(user),
        "access_log": access_log_entries(patient),
    }


def account_of(user: User) -> Data:
    authenticator = authenticator_for(user)
    return {
        "id": user.pk,
        "email": user.email,
        "role": user.role,
        "language": user.language,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "two_factor": {
            "enabled": user.two_factor_enabled,
            "authenticator_app": authenticator is not None,
            "backup_codes_left": backup_codes_left(user) if authenticator else 0,
        },
    }


def profile_of(patient: Patient) -> Data:
    return {
        "id": patient.pk,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "birth_date": patient.birth_date,
        "email": patient.email,
        "phone": patient.phone,
        "created_at": patient.created_at,
    }


def relative_of(relative: Relative) -> Data:
    return {
        "id": relative.pk,
        "first_name": relative.first_name,
        "last_name": relative.last_name,
        "birth_date": relative.birth_date,
        "relationship": relative.relationship,
        "created_at": relative.created_at,
    }


def appointment_of(appointment: Appointment) -> Data:
    practitioner, practice = appointment.practitioner, appointment.practitioner.practice
    return {
        "id": appointment.pk,
        "start": appointment.start,
        "end": appointment.end,
        "status": appointment.status,
        "relative_id": appointment.relative_id,
        "for_relative": appointment.relative.full_name if appointment.relative else None,
        "practitioner": {
            "id": practitioner.pk,
            "name": str(practitioner),
            "specialty": str(practitioner.specialty),
            "practice": {
                "name": practice.name,
                "address": practice.address,
                "postcode": practice.postcode,
                "city": practice.city,
                "timezone": practice.timezone,
            },
        },
        "reason": appointment.reason.label,
        "channel": appointment.channel,
        "booked_at": appointment.created_at,
        "cancelled_at": appointment.cancelled_at,
        "cancelled_by": appointment.cancelled_by or None,
        "cancellation_reason": appointment.cancellation_reason,
        "rescheduled_from_id": appointment.rescheduled_from_id,
    }


def waiting_of(appointment: Appointment) -> Data | None:
    entry = getattr(appointment, "waitlist_entry", None)
    if entry is None:
        return None
    return {
        "appointment_id": appointment.pk,
        "active": entry.active,
        "joined_at": entry.created_at,
        "offers": [
            {
                "start": offer.start,
                "expires_at": offer.expires_at,
                "status": offer.status,
                "offered_at": offer.created_at,
            }
            for offer in entry.offers.all()
        ],
    }


def notifications_of(*, patient: Patient, user: User) -> list[Data]:
    """Messages to the patient (not those telling their practitioner)."""
    rows = Notification.objects.filter(
        Q(recipient=Notification.Recipient.PATIENT, appointment__patient=patient)
        | Q(recipient_user=user)
    ).order_by("created_at", "pk")
    return [
        {
            "id": row["pk"],
            "kind": row["kind"],
            "channel": row["channel"],
            "status": row["status"],
            "appointment_id": row["appointment_id"],
            "scheduled_for": row["scheduled_for"],
            "sent_at": row["sent_at"],
            "created_at": row["created_at"],
        }
        for row in rows.values(
            "pk",
            "kind",
            "channel",
            "status",
            "appointment_id",
            "scheduled_for",
            "sent_at",
            "created_at",
        )
    ]


def sessions_of(user: User) -> list[Data]:
    rows = UserSession.objects.filter(user=user, expire_date__gt=timezone.now()).order_by(
        "-last_activity"
    )
    fields = ("created_at", "last_activity", "expire_date", "ip", "user_agent")
    return [dict(row) for row in rows.values(*fields)]


def access_log_entries(patient: Patient) -> list[Data]:
    """Every access-log entry about the patient, newest first, described as on
    /me/access-log/ (audit.access_log): the events that name them, and the refusals of others on
    their appointments. Who acted is said in words; another person's IP or device never is."""
    own = AccessEvent.objects.filter(patient_id=patient.pk)
    refusals = AccessEvent.objects.filter(
        action=Action.DENIED,
        patient_id__isnull=True,
        appointment_id__in=Appointment.objects.filter(patient_id=patient.pk).values("id"),
    )
    events = sorted([*own, *refusals], key=lambda e: (e.occurred_at, e.pk), reverse=True)
    names = practitioner_names(events, agendas=secretaries_agendas(events))
    return [
        {
            "id": event.pk,
            "occurred_at": event.occurred_at,
            "action": event.action,
            "channel": event.channel,
            "appointment_id": event.appointment_id,
            "description": capfirst(describe(event, patient=patient, names=names)),
            "refused": event.action == Action.DENIED,
        }
        for event in events
    ]
