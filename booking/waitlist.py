"""The waiting list: patients who would take an earlier slot with the same practitioner and reason.

When an appointment is cancelled or moved away, booking.services calls `offer_freed_slot` inside
that transaction. The freed start is offered, in queue order, to the waitlisted patients for whom
the engine would offer it; each offer is an outbox notification. An offer reserves nothing: the
first patient to take one is rescheduled there by `booking.services.reschedule_appointment`, which
is atomic and keeps the exclusion constraint as the guard, and the other offers of that start are
gone. A patient who loses the race keeps their appointment.

Locks are taken in booking.services' order (appointment, agenda, then offers) and the expiry task
skips offers being taken, so no path here waits on another in a cycle.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import Actor, system_actor
from audit.models import Action
from audit.services import record_access
from booking.availability import ONE_DAY, is_offered
from booking.errors import (
    DomainError,
    InvalidTransition,
    NotAllowed,
    NotVisible,
    SlotNotOffered,
    SlotUnavailable,
    TooLateToCancel,
)
from booking.models import Appointment, WaitlistEntry, WaitlistOffer
from booking.selectors import access_appointment
from booking.slots import booking_window, load_schedules
from practitioners.models import Practitioner

DEFAULT_OFFER_MINUTES = 30
DEFAULT_MAX_OFFERS = 5
OFFERED = WaitlistOffer.Status.OFFERED


class OfferUnavailable(DomainError):
    """The offer expired, was taken (by this patient or another) or no longer applies."""

    code = "offer_unavailable"
    status = 409


def offer_lifetime() -> timedelta:
    return timedelta(
        minutes=getattr(settings, "CRENEAU_WAITLIST_OFFER_MINUTES", DEFAULT_OFFER_MINUTES)
    )


def max_offers_per_slot() -> int:
    return int(getattr(settings, "CRENEAU_WAITLIST_MAX_OFFERS", DEFAULT_MAX_OFFERS))


# --- Joining and leaving --------------------------------------------------------------------


def _own_appointment(actor: Actor, appointment_id: int) -> Appointment:
    """The actor's own appointment, locked; NotVisible (404) for another patient's."""
    appointment = access_appointment(actor=actor, appointment_id=appointment_id, for_update=True)
    user = actor.user
    if not (actor.is_patient and user is not None and appointment.patient.user_id == user.pk):
        # Practice staff see the appointment, but waiting is the patient's choice.
        raise NotAllowed(
            _("Only the patient may put an appointment on the waiting list."),
            appointment_id=appointment.pk,
        )
    return appointment


def _ensure_may_wait(appointment: Appointment, now: datetime) -> None:
    if appointment.status != Appointment.Status.BOOKED or appointment.start <= now:
        raise InvalidTransition(
            _("Only an upcoming booked appointment can wait for an earlier slot.")
        )
    practitioner = appointment.practitioner
    if not (practitioner.online_booking_enabled and appointment.reason.online_bookable):
        raise SlotNotOffered(_("Earlier slots are offered only for visits booked online."))
    # Taking an offer reschedules, which patients may not do within the cancellation notice.
    if appointment.start - now < practitioner.cancellation_notice:
        raise TooLateToCancel(
            _("This appointment starts in less than %(hours)s hours: please call the practice.")
            % {"hours": practitioner.cancellation_notice_hours}
        )


@transaction.atomic
def join_waitlist(*, actor: Actor, appointment_id: int) -> WaitlistEntry:
    """Put the actor's own upcoming booked appointment on the waiting list for an earlier slot.

    Idempotent: joining again keeps the place in the queue; joining after leaving queues anew.
    """
    appointment = _own_appointment(actor, appointment_id)
    now = timezone.now()
    _ensure_may_wait(appointment, now)
    entry, created = WaitlistEntry.objects.get_or_create(appointment=appointment)
    if not created and not entry.active:
        entry.active = True
        entry.created_at = now  # the queue is ordered by it: leaving gives up one's place
        entry.save(update_fields=["active", "created_at"])
    record_access(
        actor=actor, action=Action.UPDATE, appointments=[appointment], detail="waitlist join"
    )
    return entry


@transaction.atomic
def leave_waitlist(*, actor: Actor, appointment_id: int) -> None:
    """Take the actor's appointment off the waiting list, withdrawing its open offers."""
    appointment = _own_appointment(actor, appointment_id)
    entry = WaitlistEntry.objects.filter(appointment=appointment, active=True).first()
    if entry is not None:
        entry.active = False
        entry.save(update_fields=["active"])
        entry.offers.filter(status=OFFERED).update(status=WaitlistOffer.Status.EXPIRED)
    record_access(
        actor=actor, action=Action.UPDATE, appointments=[appointment], detail="waitlist leave"
    )


# --- Offering a freed slot ------------------------------------------------------------------


def _waiting_entries(
    practitioner: Practitioner, *, start: datetime, end: datetime, now: datetime
) -> QuerySet[WaitlistEntry]:
    """Active entries that would gain from [start, end) and whose reason fits in it, in queue
    order; whether the engine offers `start` for their reason is checked apart."""
    return (
        WaitlistEntry.objects.filter(
            active=True,
            appointment__practitioner=practitioner,
            appointment__status=Appointment.Status.BOOKED,
            appointment__start__gt=start,
            # The patient may still move it: booking.services refuses within the notice.
            appointment__start__gte=now + practitioner.cancellation_notice,
            appointment__reason__active=True,
            appointment__reason__online_bookable=True,
            appointment__reason__duration_minutes__lte=(end - start) // timedelta(minutes=1),
        )
        # Once per slot (booking_waitlistoffer_once_per_slot): a start freed again is not
        # offered again to whoever was already told of it.
        .exclude(Exists(WaitlistOffer.objects.filter(entry=OuterRef("pk"), start=start)))
        .order_by("created_at", "id")
    )


def _offered_reasons(
    practitioner: Practitioner, *, start: datetime, reasons: dict[int, int], now: datetime
) -> list[int]:
    """Which of `reasons` (id: duration in minutes) the engine offers at `start` to a patient
    now: hours, absences, appointments (a move may overlap its old slot), notice, horizon."""
    tz = practitioner.practice.tz
    window = booking_window(practitioner, now=now)
    day = start.astimezone(tz).date()
    schedule = load_schedules([practitioner], day - ONE_DAY, day + ONE_DAY)[practitioner.pk]
    return [
        reason_id
        for reason_id, minutes in reasons.items()
        if is_offered(
            start=start,
            rules=schedule.rules,
            busy=schedule.busy,
            reason_id=reason_id,
            duration=timedelta(minutes=minutes),
            tz=tz,
            earliest=window.earliest,
            latest_day=window.latest_day,
        )
    ]


def _open_offers(practitioner: Practitioner, start: datetime, now: datetime) -> int:
    return WaitlistOffer.objects.filter(
        entry__appointment__practitioner=practitioner,
        start=start,
        status=OFFERED,
        expires_at__gt=now,
    ).count()


def _notify(offer: WaitlistOffer) -> None:
    # Imported here: notifications reads booking's models and booking.services calls this
    # module, so a module-level import would tie the apps into an import cycle.
    from notifications.services import notify_waitlist_offer

    notify_waitlist_offer(offer=offer)


def offer_freed_slot(
    *, practitioner: Practitioner, start: datetime, end: datetime, now: datetime | None = None
) -> list[WaitlistOffer]:
    """Offer the freed [start, end) to the first waitlisted patients of `practitioner`.

    Call it inside the transaction that frees the slot, once the appointment there is cancelled
    or moved. At most CRENEAU_WAITLIST_MAX_OFFERS offers of one start are open at a time; each
    lasts CRENEAU_WAITLIST_OFFER_MINUTES and is notified through the outbox.
    """
    now = now or timezone.now()
    window = booking_window(practitioner, now=now)
    if not practitioner.online_booking_enabled or not window.admits(
        start, tz=practitioner.practice.tz
    ):
        return []
    waiting = _waiting_entries(practitioner, start=start, end=end, now=now)
    # Nearly every cancellation ends here, with this one query: nobody waits for that slot.
    reasons = dict(
        waiting.order_by()
        .values_list("appointment__reason_id", "appointment__reason__duration_minutes")
        .distinct()
    )
    if not reasons:
        return []
    return _offer(practitioner, start=start, waiting=waiting, reasons=reasons, now=now)


@transaction.atomic
def _offer(
    practitioner: Practitioner,
    *,
    start: datetime,
    waiting: QuerySet[WaitlistEntry],
    reasons: dict[int, int],
    now: datetime,
) -> list[WaitlistOffer]:
    room = max_offers_per_slot() - _open_offers(practitioner, start, now)
    if room <= 0:
        return []
    offered = _offered_reasons(practitioner, start=start, reasons=reasons, now=now)
    entries = list(
        waiting.filter(appointment__reason_id__in=offered).select_related("appointment")[:room]
    )
    if not entries:
        return []
    expires_at = now + offer_lifetime()
    offers = WaitlistOffer.objects.bulk_create(
        [WaitlistOffer(entry=entry, start=start, expires_at=expires_at) for entry in entries]
    )
    record_access(
        actor=system_actor("waitlist.offer_freed_slot"),
        action=Action.VIEW,
        appointments=[entry.appointment for entry in entries],
        detail="waitlist offer",
    )
    for offer in offers:
        _notify(offer)
    return offers


# --- Taking an offer ------------------------------------------------------------------------


def _patient_offers(actor: Actor) -> QuerySet[WaitlistOffer]:
    """The offers made to the actor's own appointments: only the patient sees them."""
    user = actor.user
    if not actor.is_patient or user is None or not user.is_active:
        return WaitlistOffer.objects.none()
    return WaitlistOffer.objects.filter(entry__appointment__patient__user=user)


def _offer_for(actor: Actor, offer_id: int) -> WaitlistOffer:
    offer = (
        _patient_offers(actor)
        .select_related(
            "entry__appointment__practitioner__practice",
            "entry__appointment__practitioner__specialty",
            "entry__appointment__reason",
            "entry__appointment__relative",
        )
        .filter(pk=offer_id)
        .first()
    )
    if offer is None:
        raise NotVisible(detail="waitlist offer not visible to actor")
    return offer


def access_waitlist_offer(*, actor: Actor, offer_id: int) -> WaitlistOffer:
    """One offer made to the actor, with its appointment, recorded as a view of it."""
    offer = _offer_for(actor, offer_id)
    record_access(
        actor=actor,
        action=Action.VIEW,
        appointments=[offer.entry.appointment],
        detail="waitlist offer",
    )
    return offer


def offer_unavailable_reason(offer: WaitlistOffer, *, now: datetime) -> str | None:
    """Why the offer can no longer be taken, for the patient; None while it can."""
    if offer.status == WaitlistOffer.Status.TAKEN:
        return _("You have already taken this slot.")
    if offer.status == WaitlistOffer.Status.GONE:
        return _("This slot has been taken by someone else. Your appointment is unchanged.")
    if offer.status == WaitlistOffer.Status.EXPIRED or offer.expires_at <= now:
        return _("This offer has expired. Your appointment is unchanged.")
    if not offer.entry.active or offer.entry.appointment.status != Appointment.Status.BOOKED:
        return _("This offer no longer applies to your appointment.")
    return None


@transaction.atomic
def _take(*, actor: Actor, offer_id: int) -> Appointment:
    offer = _offer_for(actor, offer_id)
    reason = offer_unavailable_reason(offer, now=timezone.now())
    if reason is not None:
        raise OfferUnavailable(reason, appointment_id=offer.entry.appointment_id)
    from booking.services import reschedule_appointment  # booking.services calls this module

    # Locks the appointment, then the agenda: a rival taker of this start waits here, then
    # finds the slot taken (SlotUnavailable) and its own offer gone.
    appointment = reschedule_appointment(
        actor=actor, appointment_id=offer.entry.appointment_id, start=offer.start
    )
    # Compare-and-set: the expiry task may have closed the offer since it was read.
    if not WaitlistOffer.objects.filter(pk=offer.pk, status=OFFERED).update(
        status=WaitlistOffer.Status.TAKEN
    ):
        raise OfferUnavailable(_("This offer has expired. Your appointment is unchanged."))
    WaitlistOffer.objects.filter(
        entry__appointment__practitioner_id=appointment.practitioner_id,
        start=offer.start,
        status=OFFERED,
    ).update(status=WaitlistOffer.Status.GONE)
    # The entry's other offers were for the appointment just cancelled by the move.
    offer.entry.offers.filter(status=OFFERED).update(status=WaitlistOffer.Status.EXPIRED)
    WaitlistEntry.objects.filter(pk=offer.entry_id).update(active=False)
    return appointment


def take_waitlist_offer(*, actor: Actor, offer_id: int) -> Appointment:
    """Move the offer's appointment to the offered start; the new appointment.

    Only the offer's patient may take it (anyone else: NotVisible). OfferUnavailable when it
    expired, was taken, is gone or its time can no longer be booked; SlotUnavailable when the
    slot was booked meanwhile. Whatever is refused, the patient's appointment is unchanged.
    """
    # The move rolls back with everything else in _take, so a slot found taken or no longer
    # offered closes the offer after that rollback: the offer page then says so.
    try:
        return _take(actor=actor, offer_id=offer_id)
    except SlotUnavailable:
        _close(actor, offer_id, status=WaitlistOffer.Status.GONE)
        raise
    except SlotNotOffered as exc:  # too soon now, or the practice closed that time meanwhile
        _close(actor, offer_id, status=WaitlistOffer.Status.EXPIRED)
        raise OfferUnavailable(
            _("This time can no longer be booked. Your appointment is unchanged."),
            field="start",
        ) from exc


def _close(actor: Actor, offer_id: int, *, status: str) -> None:
    _patient_offers(actor).filter(pk=offer_id, status=OFFERED).update(status=status)


@transaction.atomic
def expire_waitlist_offers(*, now: datetime | None = None) -> int:
    """Close the open offers past their expiry; how many. For the periodic task."""
    now = now or timezone.now()
    # SKIP LOCKED: an offer locked by a patient taking it is theirs to settle, and waiting on it
    # while holding other offers could deadlock with the taker's update of the same start.
    due = list(
        WaitlistOffer.objects.select_for_update(skip_locked=True)
        .filter(status=OFFERED, expires_at__lte=now)
        .values_list("pk", flat=True)
    )
    return WaitlistOffer.objects.filter(pk__in=due, status=OFFERED).update(
        status=WaitlistOffer.Status.EXPIRED
    )
