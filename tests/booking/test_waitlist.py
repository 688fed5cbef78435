"""The waiting list (issue 3, item 3): joining and leaving, offering a freed slot, the first
patient to take it gets it, expiry, and the patient's pages.

The `clinic` fixture is open every day 08:00-18:00 in Paris with a 30-minute reason, 60 minutes'
minimum notice and 24 hours' cancellation notice; it is Monday 1 June 2026, 08:00 there, and
`clinic.slot` (tomorrow 09:00) is the slot freed in most tests. Slots are freed by cancelling the
appointment in the database and calling `offer_freed_slot` as booking.services does, so these
tests do not depend on how the services are wired.
"""

import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AccessEvent, Action
from booking.errors import (
    InvalidTransition,
    NotAllowed,
    NotVisible,
    SlotUnavailable,
    TooLateToCancel,
)
from booking.models import Appointment, WaitlistEntry, WaitlistOffer
from booking.services import book_appointment
from booking.waitlist import (
    OfferUnavailable,
    expire_waitlist_offers,
    join_waitlist,
    leave_waitlist,
    offer_freed_slot,
    take_waitlist_offer,
)
from tests.factories import (
    AbsenceFactory,
    AppointmentFactory,
    PatientFactory,
    VisitReasonFactory,
    WaitlistEntryFactory,
    WaitlistOfferFactory,
    make_actor,
    secretary_of,
)

OFFERED = WaitlistOffer.Status.OFFERED
TAKEN = WaitlistOffer.Status.TAKEN
GONE = WaitlistOffer.Status.GONE
EXPIRED = WaitlistOffer.Status.EXPIRED


class Recorder(list):
    """The offers notify_waitlist_offer was called with; `real` is the function it stands in for."""

    real: Callable[..., Any]


@pytest.fixture(autouse=True)
def notified(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Records notify_waitlist_offer calls in place of the real outbox writer."""
    import notifications.services as module

    calls = Recorder()

    def record(*, offer: WaitlistOffer) -> list[Any]:
        calls.append(offer)
        return []

    calls.real = module.notify_waitlist_offer
    monkeypatch.setattr(module, "notify_waitlist_offer", record)
    return calls


def local(clinic: SimpleNamespace, days: int, hour: int, minute: int = 0) -> datetime:
    """`days` after today (Monday 1 June 2026), at a wall-clock time in Paris."""
    return datetime.combine(date(2026, 6, 1) + timedelta(days=days), time(hour, minute), clinic.tz)


def booked(clinic: SimpleNamespace, start: datetime, **fields: Any) -> Appointment:
    fields.setdefault("reason", clinic.reason)
    fields.setdefault("patient", PatientFactory())
    return AppointmentFactory(practitioner=clinic.practitioner, start=start, **fields)


def waiting(clinic: SimpleNamespace, start: datetime, **fields: Any) -> WaitlistEntry:
    """A patient with an appointment at `start`, on the waiting list."""
    return WaitlistEntryFactory(appointment=booked(clinic, start, **fields))


def free(appointment: Appointment) -> list[WaitlistOffer]:
    """Cancel `appointment` and offer its slot, in one transaction, as booking.services does."""
    with transaction.atomic():
        Appointment.objects.filter(pk=appointment.pk).update(status=Appointment.Status.CANCELLED)
        return offer_freed_slot(
            practitioner=appointment.practitioner, start=appointment.start, end=appointment.end
        )


def booked_at(start: datetime) -> int:
    return Appointment.objects.filter(start=start, status=Appointment.Status.BOOKED).count()


def actor_of(entry: WaitlistEntry) -> Any:
    return make_actor(entry.appointment.patient.user)


def statuses(*offers: WaitlistOffer) -> list[str]:
    return [WaitlistOffer.objects.get(pk=offer.pk).status for offer in offers]


def reloaded(appointment: Appointment) -> tuple[str, datetime]:
    appointment.refresh_from_db()
    return appointment.status, appointment.start


# --- Joining and leaving --------------------------------------------------------------------


def test_patient_puts_their_appointment_on_the_waiting_list(clinic):
    appointment = booked(clinic, local(clinic, 3, 10), patient=clinic.patient)

    entry = join_waitlist(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)

    assert entry.appointment == appointment
    assert entry.active
    event = AccessEvent.objects.get()
    assert (event.action, event.appointment_id, event.actor_user_id, event.detail) == (
        Action.UPDATE,
        appointment.pk,
        clinic.patient.user.pk,
        "waitlist join",
    )


def test_joining_twice_keeps_the_place_in_the_queue(clinic, frozen_now):
    appointment = booked(clinic, local(clinic, 3, 10), patient=clinic.patient)
    actor = make_actor(clinic.patient.user)
    first = join_waitlist(actor=actor, appointment_id=appointment.pk)

    with time_machine.travel(frozen_now + timedelta(hours=1), tick=False):
        again = join_waitlist(actor=actor, appointment_id=appointment.pk)

    assert again.pk == first.pk
    assert WaitlistEntry.objects.get().created_at == frozen_now


def test_leaving_then_joining_again_queues_at_the_end(clinic, frozen_now):
    appointment = booked(clinic, local(clinic, 3, 10), patient=clinic.patient)
    actor = make_actor(clinic.patient.user)
    join_waitlist(actor=actor, appointment_id=appointment.pk)

    leave_waitlist(actor=actor, appointment_id=appointment.pk)
    assert not WaitlistEntry.objects.get().active
    later = frozen_now + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        join_waitlist(actor=actor, appointment_id=appointment.pk)

    entry = WaitlistEntry.objects.get()
    assert (entry.active, entry.created_at) == (True, later)
    assert list(AccessEvent.objects.order_by("id").values_list("detail", flat=True)) == [
        "waitlist join",
        "waitlist leave",
        "waitlist join",
    ]


def test_leaving_withdraws_open_offers(clinic):
    entry = waiting(clinic, local(clinic, 3, 10), patient=clinic.patient)
    offer = WaitlistOfferFactory(entry=entry, start=clinic.slot)

    leave_waitlist(actor=actor_of(entry), appointment_id=entry.appointment_id)

    assert statuses(offer) == [EXPIRED]
    with pytest.raises(OfferUnavailable):
        take_waitlist_offer(actor=actor_of(entry), offer_id=offer.pk)


def test_joining_another_patients_appointment_is_not_visible(clinic):
    theirs = booked(clinic, local(clinic, 3, 10))

    with pytest.raises(NotVisible):
        join_waitlist(actor=make_actor(clinic.patient.user), appointment_id=theirs.pk)
    with pytest.raises(NotVisible):
        leave_waitlist(actor=make_actor(clinic.patient.user), appointment_id=theirs.pk)

    assert not WaitlistEntry.objects.exists()


def test_practice_staff_cannot_put_a_patient_on_the_waiting_list(clinic):
    appointment = booked(clinic, local(clinic, 3, 10))

    with pytest.raises(NotAllowed):
        join_waitlist(
            actor=make_actor(secretary_of(clinic.practitioner)), appointment_id=appointment.pk
        )

    assert not WaitlistEntry.objects.exists()


@pytest.mark.parametrize(
    ("days", "hour", "status", "error"),
    [
        pytest.param(3, 10, Appointment.Status.CANCELLED, InvalidTransition, id="cancelled"),
        pytest.param(-1, 10, Appointment.Status.BOOKED, InvalidTransition, id="past"),
        pytest.param(-1, 10, Appointment.Status.DONE, InvalidTransition, id="done"),
        pytest.param(0, 15, Appointment.Status.BOOKED, TooLateToCancel, id="within-notice"),
    ],
)
def test_only_an_upcoming_movable_appointment_can_wait(clinic, days, hour, status, error):
    appointment = booked(clinic, local(clinic, days, hour), patient=clinic.patient, status=status)

    with pytest.raises(error):
        join_waitlist(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)

    assert not WaitlistEntry.objects.exists()


# --- Offering a freed slot ------------------------------------------------------------------


def test_freed_slot_is_offered_to_eligible_entries_in_queue_order(clinic, frozen_now, notified):
    blocker = booked(clinic, clinic.slot)
    second = waiting(clinic, local(clinic, 3, 11))
    first = waiting(clinic, local(clinic, 5, 10))
    WaitlistEntry.objects.filter(pk=first.pk).update(created_at=frozen_now - timedelta(days=1))
    # Not eligible: another practitioner, an earlier appointment, left the list, cancelled,
    # too close to be moved, a reason that does not fit in 30 minutes, one not bookable online.
    WaitlistEntryFactory(appointment=AppointmentFactory(start=local(clinic, 3, 10)))
    waiting(clinic, local(clinic, 1, 8))
    WaitlistEntryFactory(appointment=booked(clinic, local(clinic, 3, 12)), active=False)
    waiting(clinic, local(clinic, 3, 13), status=Appointment.Status.CANCELLED)
    long_reason = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    waiting(clinic, local(clinic, 3, 14), reason=long_reason)
    phone_only = VisitReasonFactory(practitioner=clinic.practitioner, online_bookable=False)
    waiting(clinic, local(clinic, 3, 16), reason=phone_only)

    offers = free(blocker)

    assert [offer.entry_id for offer in offers] == [first.pk, second.pk]
    assert {(o.start, o.status, o.expires_at) for o in offers} == {
        (clinic.slot, OFFERED, frozen_now + timedelta(minutes=30))
    }
    assert list(WaitlistOffer.objects.order_by("id")) == offers
    assert [offer.pk for offer in notified] == [offer.pk for offer in offers]
    events = AccessEvent.objects.filter(detail="waitlist offer")
    assert {(e.appointment_id, e.actor_kind) for e in events} == {
        (first.appointment_id, "system"),
        (second.appointment_id, "system"),
    }


def test_an_appointment_within_the_cancellation_notice_gets_no_offer(clinic):
    blocker = booked(clinic, local(clinic, 0, 10))
    waiting(clinic, local(clinic, 0, 15))  # today: the patient may no longer move it online

    assert free(blocker) == []


def test_offers_are_capped_per_slot(clinic, settings, notified):
    settings.CRENEAU_WAITLIST_MAX_OFFERS = 2
    settings.CRENEAU_WAITLIST_OFFER_MINUTES = 10
    blocker = booked(clinic, clinic.slot)
    entries = [waiting(clinic, local(clinic, 3, 10 + index)) for index in range(3)]

    offers = free(blocker)

    assert [offer.entry_id for offer in offers] == [entries[0].pk, entries[1].pk]
    assert {offer.expires_at - offer.created_at for offer in offers} == {timedelta(minutes=10)}
    assert len(notified) == 2


def test_a_slot_freed_again_goes_to_the_next_in_the_queue(clinic, settings, notified):
    settings.CRENEAU_WAITLIST_MAX_OFFERS = 2
    first_blocker = booked(clinic, clinic.slot)
    entries = [waiting(clinic, local(clinic, 3, 10 + index)) for index in range(4)]
    first_offers = free(first_blocker)
    WaitlistOffer.objects.filter(pk=first_offers[0].pk).update(status=EXPIRED)

    # Booked directly by someone else, then cancelled again: one offer is still open.
    second_offers = free(booked(clinic, clinic.slot))

    assert [offer.entry_id for offer in second_offers] == [entries[2].pk]
    assert len(notified) == 3


@pytest.mark.parametrize("why", ["within-minimum-notice", "absence", "online-booking-off"])
def test_a_freed_start_the_engine_would_not_offer_is_not_offered(clinic, why):
    start = local(clinic, 0, 8, 30) if why == "within-minimum-notice" else clinic.slot  # now 08:00
    blocker = booked(clinic, start)
    waiting(clinic, local(clinic, 3, 10))
    if why == "absence":
        AbsenceFactory(practitioner=clinic.practitioner, start=start, end=local(clinic, 1, 12))
    if why == "online-booking-off":
        clinic.practitioner.online_booking_enabled = False
        clinic.practitioner.save()

    assert free(blocker) == []
    assert not WaitlistOffer.objects.exists()


def test_a_slot_partly_retaken_by_the_move_itself_is_not_offered(clinic):
    blocker = booked(clinic, clinic.slot)
    waiting(clinic, local(clinic, 3, 10))

    # Moved by a quarter of an hour: 09:00-09:30 is not free, whatever the grid says.
    with transaction.atomic():
        Appointment.objects.filter(pk=blocker.pk).update(status=Appointment.Status.CANCELLED)
        booked(clinic, clinic.slot + timedelta(minutes=15), patient=blocker.patient)
        offers = offer_freed_slot(
            practitioner=clinic.practitioner, start=blocker.start, end=blocker.end
        )

    assert offers == []


def test_a_longer_freed_period_is_offered_to_longer_reasons(clinic):
    hour = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    blocker = booked(clinic, clinic.slot, reason=hour)
    short = waiting(clinic, local(clinic, 3, 10))
    long = waiting(clinic, local(clinic, 3, 11), reason=hour)

    offers = free(blocker)

    assert sorted(offer.entry_id for offer in offers) == sorted([short.pk, long.pk])


def offer_counting_queries(blocker: Appointment) -> tuple[list[WaitlistOffer], int]:
    Appointment.objects.filter(pk=blocker.pk).update(status=Appointment.Status.CANCELLED)
    with CaptureQueriesContext(connection) as queries:
        offers = offer_freed_slot(
            practitioner=blocker.practitioner, start=blocker.start, end=blocker.end
        )
    return offers, len(queries)


def test_offering_a_freed_slot_has_a_constant_query_budget(clinic, settings):
    settings.CRENEAU_WAITLIST_MAX_OFFERS = 5
    quarter = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=15)
    waiting(clinic, local(clinic, 3, 10))
    one_offer, for_one = offer_counting_queries(booked(clinic, clinic.slot))

    for index in range(12):
        reason = quarter if index % 2 else clinic.reason
        waiting(clinic, local(clinic, 4, 8 + index // 2, 30 * (index % 2)), reason=reason)
    five_offers, for_five = offer_counting_queries(booked(clinic, local(clinic, 1, 14)))

    assert (len(one_offer), len(five_offers)) == (1, 5)
    # Waiting reasons, savepoint, open offers, schedule (hours, their reasons, absences,
    # appointments), entries, one insert of the offers, one of the access events, release.
    # Notifications add their own writes per offer.
    assert for_five == for_one <= 11


def test_a_slot_nobody_waits_for_costs_one_query(clinic):
    waiting(clinic, local(clinic, 3, 10), patient=clinic.patient)  # waits, but for a later slot
    WaitlistEntryFactory(appointment=AppointmentFactory(start=local(clinic, 3, 10)))

    offers, queries = offer_counting_queries(booked(clinic, local(clinic, 3, 14)))

    assert (offers, queries) == ([], 1)


def test_offers_are_written_to_the_outbox_and_sent_after_commit(
    clinic, monkeypatch, notified, django_capture_on_commit_callbacks
):
    import notifications.services
    from notifications.models import Notification

    monkeypatch.setattr(notifications.services, "notify_waitlist_offer", notified.real)
    blocker = booked(clinic, clinic.slot)
    waiting(clinic, local(clinic, 3, 10), patient=clinic.patient)

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        offers = free(blocker)

    rows = Notification.objects.filter(waitlist_offer__in=offers)
    assert rows.exists()
    assert {(row.kind, row.status) for row in rows} == {
        (Notification.Kind.WAITLIST_OFFER, Notification.Status.PENDING)
    }
    assert after_commit, "delivery is handed over after commit, not inside the transaction"
    # The same slot freed again: nobody is told twice.
    offer_freed_slot(practitioner=clinic.practitioner, start=blocker.start, end=blocker.end)
    assert Notification.objects.filter(kind=Notification.Kind.WAITLIST_OFFER).count() == len(rows)


# --- Taking an offer ------------------------------------------------------------------------


@pytest.fixture
def race(clinic):
    """Two waitlisted patients, A first in the queue, both offered the freed `clinic.slot`."""
    blocker = booked(clinic, clinic.slot)
    first = waiting(clinic, local(clinic, 3, 10))
    second = waiting(clinic, local(clinic, 3, 11))
    offers = free(blocker)
    assert [offer.entry for offer in offers] == [first, second]
    return SimpleNamespace(first=first, second=second, offers=offers)


def test_waitlist_offer_taken_by_the_first_patient_the_second_gets_nothing(clinic, race):
    first_offer, second_offer = race.offers
    old = race.first.appointment

    new = take_waitlist_offer(actor=actor_of(race.first), offer_id=first_offer.pk)

    assert (new.start, new.end) == (clinic.slot, clinic.slot + timedelta(minutes=30))
    assert (new.status, new.patient, new.rescheduled_from) == (
        Appointment.Status.BOOKED,
        old.patient,
        old,
    )
    assert reloaded(old) == (Appointment.Status.CANCELLED, local(clinic, 3, 10))
    assert statuses(first_offer, second_offer) == [TAKEN, GONE]
    assert not WaitlistEntry.objects.get(pk=race.first.pk).active

    with pytest.raises(OfferUnavailable) as refused:
        take_waitlist_offer(actor=actor_of(race.second), offer_id=second_offer.pk)

    assert refused.value.status == 409
    assert reloaded(race.second.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 11))
    assert statuses(second_offer) == [GONE]
    assert not race.second.offers.filter(status=TAKEN).exists()
    assert (
        Appointment.objects.filter(start=clinic.slot, status=Appointment.Status.BOOKED).count() == 1
    )


def test_taking_an_offer_records_the_move(clinic, race):
    patient_user = race.first.appointment.patient.user

    new = take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    events = AccessEvent.objects.filter(actor_user_id=patient_user.pk).order_by("id")
    assert [(e.action, e.appointment_id) for e in events] == [
        (Action.RESCHEDULE, race.first.appointment_id),
        (Action.CREATE, new.pk),
    ]


def test_taking_an_offer_closes_the_entrys_other_offers(clinic, race):
    other_blocker = booked(clinic, local(clinic, 2, 9))
    later_offers = free(other_blocker)
    assert race.first.pk in {offer.entry_id for offer in later_offers}

    take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    assert set(race.first.offers.values_list("status", flat=True)) == {TAKEN, EXPIRED}


def test_slot_booked_directly_meanwhile_take_is_refused_and_nothing_changes(clinic, race):
    outsider = PatientFactory()
    book_appointment(
        actor=make_actor(outsider.user),
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        patient=outsider,
    )

    with pytest.raises(SlotUnavailable):
        take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    assert reloaded(race.first.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 10))
    assert not Appointment.objects.filter(patient=race.first.appointment.patient).exclude(
        pk=race.first.appointment_id
    )
    assert WaitlistEntry.objects.get(pk=race.first.pk).active
    assert statuses(*race.offers) == [GONE, OFFERED]


def test_a_time_no_longer_offered_cannot_be_taken(clinic, race):
    AbsenceFactory(practitioner=clinic.practitioner, start=clinic.slot, end=local(clinic, 1, 12))

    with pytest.raises(OfferUnavailable):
        take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    assert reloaded(race.first.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 10))
    assert statuses(race.offers[0]) == [EXPIRED]


def test_expired_offer_cannot_be_taken(clinic, race, frozen_now):
    with (
        time_machine.travel(frozen_now + timedelta(minutes=30), tick=False),
        pytest.raises(OfferUnavailable),
    ):
        take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    assert reloaded(race.first.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 10))


def test_an_offer_whose_appointment_was_cancelled_cannot_be_taken(clinic, race):
    Appointment.objects.filter(pk=race.first.appointment_id).update(
        status=Appointment.Status.CANCELLED
    )

    with pytest.raises(OfferUnavailable):
        take_waitlist_offer(actor=actor_of(race.first), offer_id=race.offers[0].pk)

    assert booked_at(clinic.slot) == 0


def test_only_the_offers_patient_may_take_it(clinic, race):
    offer = race.offers[0]
    others = [
        race.second.appointment.patient.user,
        clinic.patient.user,
        clinic.practitioner.user,
        secretary_of(clinic.practitioner),
    ]

    for user in others:
        with pytest.raises(NotVisible):
            take_waitlist_offer(actor=make_actor(user), offer_id=offer.pk)
    with pytest.raises(NotVisible):
        take_waitlist_offer(actor=make_actor(None), offer_id=offer.pk)

    assert statuses(offer) == [OFFERED]
    assert reloaded(race.first.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 10))


def test_expiry_closes_only_the_open_offers_past_their_time(clinic, race, frozen_now):
    taken = WaitlistOfferFactory(
        entry=race.first, start=local(clinic, 2, 9), status=TAKEN, expires_at=frozen_now
    )
    later = WaitlistOfferFactory(
        entry=race.second,
        start=local(clinic, 2, 9),
        expires_at=frozen_now + timedelta(hours=1),
    )

    assert expire_waitlist_offers(now=frozen_now + timedelta(minutes=29)) == 0
    assert expire_waitlist_offers(now=frozen_now + timedelta(minutes=30)) == 2

    assert statuses(*race.offers, taken, later) == [EXPIRED, EXPIRED, TAKEN, OFFERED]
    assert expire_waitlist_offers(now=frozen_now + timedelta(minutes=30)) == 0


@pytest.mark.django_db(transaction=True)
def test_two_patients_taking_at_once_one_gets_the_slot(clinic, race, monkeypatch):
    assert connection.vendor == "postgresql", "this race needs PostgreSQL's row locks"
    # These transactions commit: keep the after-commit delivery (tested with notifications)
    # out of this race.
    import notifications.services

    monkeypatch.setattr(notifications.services, "enqueue", lambda ids: None, raising=False)
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def take(index: int, entry: WaitlistEntry, offer: WaitlistOffer) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = take_waitlist_offer(actor=actor_of(entry), offer_id=offer.pk)
        except Exception as exc:  # kept for the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=take, args=(index, entry, offer))
        for index, (entry, offer) in enumerate(
            zip([race.first, race.second], race.offers, strict=True)
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [result for result in results if isinstance(result, Appointment)]
    losers = [result for result in results if not isinstance(result, Appointment)]
    assert len(winners) == 1, results
    assert isinstance(losers[0], OfferUnavailable | SlotUnavailable), results
    assert (
        Appointment.objects.filter(start=clinic.slot, status=Appointment.Status.BOOKED).count() == 1
    )
    assert sorted(statuses(*race.offers)) == sorted([TAKEN, GONE])


# --- Pages ----------------------------------------------------------------------------------


def offer_url(offer: WaitlistOffer) -> str:
    return f"/me/waitlist/offers/{offer.pk}/"


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def offer(clinic):
    """An open offer of `clinic.slot` to `clinic.patient`, whose appointment is in 3 days."""
    blocker = booked(clinic, clinic.slot)
    waiting(clinic, local(clinic, 3, 10), patient=clinic.patient)
    (offer,) = free(blocker)
    return offer


@pytest.fixture
def patient_client(client, clinic):
    client.force_login(clinic.patient.user)
    return client


def test_offer_page_shows_the_new_time_next_to_the_current_one(patient_client, clinic, offer):
    response = patient_client.get(offer_url(offer))

    assert response.status_code == 200
    html = response.content.decode()
    assert clinic.practitioner.display_name in html
    assert 'datetime="2026-06-02T09:00:00+02:00"' in html  # offered, local time
    assert 'datetime="2026-06-04T10:00:00+02:00"' in html  # current
    assert '<form method="post"' in html
    event = AccessEvent.objects.filter(actor_user_id=clinic.patient.user.pk).get()
    assert (event.action, event.appointment_id) == (Action.VIEW, offer.entry.appointment_id)


def test_taking_an_offer_on_its_page_moves_the_appointment(patient_client, clinic, offer):
    response = patient_client.post(offer_url(offer), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert response["Location"] == "/me/appointments/"
    assert messages_of(response) == [
        ("success", "Your appointment has been moved to the earlier time.")
    ]
    moved = Appointment.objects.get(patient=clinic.patient, status=Appointment.Status.BOOKED)
    assert moved.start == clinic.slot


def test_an_expired_offer_page_says_so_without_an_error(patient_client, clinic, offer, frozen_now):
    with time_machine.travel(frozen_now + timedelta(hours=1), tick=False):
        page = patient_client.get(offer_url(offer), HTTP_ACCEPT_LANGUAGE="en")
        taken = patient_client.post(offer_url(offer), HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    html = page.content.decode()
    assert "This offer has expired. Your appointment is unchanged." in html
    assert '<form method="post" class="stack"' not in html
    assert taken.status_code == 302
    assert taken["Location"] == "/me/appointments/"
    assert messages_of(taken) == [
        ("warning", "This offer has expired. Your appointment is unchanged.")
    ]
    assert reloaded(offer.entry.appointment) == (Appointment.Status.BOOKED, local(clinic, 3, 10))


def test_a_gone_offer_page_says_so(patient_client, offer):
    WaitlistOffer.objects.filter(pk=offer.pk).update(status=GONE)

    response = patient_client.get(offer_url(offer), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "taken by someone else" in response.content.decode()


def test_another_patients_offer_page_is_not_found(client, clinic, offer):
    client.force_login(PatientFactory().user)

    assert client.get(offer_url(offer)).status_code == 404
    assert client.post(offer_url(offer)).status_code == 404
    assert client.get("/me/waitlist/offers/99999999999999999999/").status_code == 404

    assert statuses(offer) == [OFFERED]
    assert AccessEvent.objects.filter(action=Action.DENIED).count() == 3


def test_offer_page_requires_login(client, offer):
    response = client.get(offer_url(offer))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_offer_page_query_budget(patient_client, offer, django_assert_max_num_queries):
    # Session, user, the offer with its appointment, one insert of the access event.
    with django_assert_max_num_queries(4):
        assert patient_client.get(offer_url(offer)).status_code == 200


def test_joining_and_leaving_from_my_appointments(patient_client, clinic):
    appointment = booked(clinic, local(clinic, 3, 10), patient=clinic.patient)
    url = f"/me/appointments/{appointment.pk}/waitlist/"

    joined = patient_client.post(url)
    assert joined.status_code == 302
    assert joined["Location"] == "/me/appointments/"
    assert messages_of(joined)[0][0] == "success"
    assert WaitlistEntry.objects.get(appointment=appointment).active

    left = patient_client.post(url, {"leave": "1"})
    assert left.status_code == 302
    assert messages_of(left)[0][0] == "success"
    assert not WaitlistEntry.objects.get(appointment=appointment).active


def test_joining_a_cancelled_appointment_shows_a_message(patient_client, clinic):
    appointment = booked(
        clinic, local(clinic, 3, 10), patient=clinic.patient, status=Appointment.Status.CANCELLED
    )

    response = patient_client.post(f"/me/appointments/{appointment.pk}/waitlist/")

    assert response.status_code == 302
    assert messages_of(response)[0][0] == "error"
    assert not WaitlistEntry.objects.exists()


def test_joining_for_another_patients_appointment_is_not_found(patient_client, clinic):
    theirs = booked(clinic, local(clinic, 3, 10))

    assert patient_client.post(f"/me/appointments/{theirs.pk}/waitlist/").status_code == 404
    assert patient_client.get(f"/me/appointments/{theirs.pk}/waitlist/").status_code == 405
    assert not WaitlistEntry.objects.exists()


def test_join_query_budget(patient_client, clinic, django_assert_max_num_queries):
    appointment = booked(clinic, local(clinic, 3, 10), patient=clinic.patient)

    # Session, user, savepoint, the locked appointment, the entry (get, then create in a
    # savepoint), the access event, release.
    with django_assert_max_num_queries(10):
        patient_client.post(f"/me/appointments/{appointment.pk}/waitlist/")


def test_a_short_freed_slot_is_offered_only_to_reasons_that_fit(clinic):
    quarter = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=15)
    blocker = booked(clinic, clinic.slot, reason=quarter)
    entry = waiting(clinic, local(clinic, 3, 10), reason=quarter)
    waiting(clinic, local(clinic, 3, 11))  # 30 minutes do not fit in the freed 15

    offers = free(blocker)

    assert [offer.entry_id for offer in offers] == [entry.pk]
