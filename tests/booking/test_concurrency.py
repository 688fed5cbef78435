"""DESIGN invariant 1 under real concurrency, on PostgreSQL (`make test` always runs there).

Each racer is a thread with its own database connection, released to the pool in a `finally`; a
barrier lines them up so their requests really overlap. The exclusion constraint is the guard:
the service's availability check alone cannot stop two transactions that both passed it.
"""

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from booking import services
from booking.errors import SlotUnavailable
from booking.models import ACTIVE_STATUSES, Appointment
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    VisitReasonFactory,
    make_actor,
)

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 50
API = "/api/v1"


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    # Not a skip: this module must fail loudly if the suite is ever pointed at another database.
    assert connection.vendor == "postgresql", "the concurrency tests need PostgreSQL"


def race(attempts: list[Callable[[], Any]]) -> list[Any]:
    """Run every attempt in its own thread, all released at once; their results, in order."""
    barrier = threading.Barrier(len(attempts))
    results: list[Any] = [None] * len(attempts)

    def run(index: int, attempt: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = attempt()
        except Exception as exc:  # kept for the assertions, not lost in a thread
            results[index] = exc
        finally:
            connection.close()  # back to the pool: threads do not get Django's request cleanup

    threads = [
        threading.Thread(target=run, args=(index, attempt))
        for index, attempt in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer is stuck"
    return results


def booking_attempt(client: APIClient, body: dict[str, Any]) -> Callable[[], int]:
    return lambda: client.post(f"{API}/appointments/", body, format="json").status_code


def logged_in_patients(count: int) -> list[APIClient]:
    clients = []
    for patient in PatientFactory.create_batch(count):
        client = APIClient()
        client.force_login(patient.user)
        clients.append(client)
    return clients


def active_intervals(practitioner_id: int) -> list[tuple[Any, Any]]:
    return list(
        Appointment.objects.filter(practitioner_id=practitioner_id, status__in=ACTIVE_STATUSES)
        .order_by("start")
        .values_list("start", "end")
    )


def test_fifty_bookings_of_one_slot_give_one_201_and_forty_nine_409(clinic):
    body = {
        "practitioner": clinic.practitioner.pk,
        "reason": clinic.reason.pk,
        "start": clinic.slot.isoformat(),
    }

    statuses = race([booking_attempt(client, body) for client in logged_in_patients(RACERS)])

    assert Counter(statuses) == {201: 1, 409: RACERS - 1}
    assert active_intervals(clinic.practitioner.pk) == [
        (clinic.slot, clinic.slot + timedelta(minutes=30))
    ]


def test_overlapping_bookings_with_different_starts_never_overlap(clinic):
    # On an 08:00 grid a 60-minute reason offers 09:00, the 30-minute one 09:00 and 09:30: a
    # winner of the hour excludes both half hours, and the two half hours may both win.
    hour = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    choices = [
        (clinic.reason, clinic.slot),
        (clinic.reason, clinic.slot + timedelta(minutes=30)),
        (hour, clinic.slot),
    ]
    attempts = []
    for index, client in enumerate(logged_in_patients(RACERS)):
        reason, start = choices[index % len(choices)]
        body = {
            "practitioner": clinic.practitioner.pk,
            "reason": reason.pk,
            "start": start.isoformat(),
        }
        attempts.append(booking_attempt(client, body))

    statuses = race(attempts)

    assert set(statuses) <= {201, 409}, statuses
    booked = active_intervals(clinic.practitioner.pk)
    assert len(booked) in {1, 2}
    assert statuses.count(201) == len(booked)
    for (_, earlier_end), (later_start, _) in itertools.pairwise(booked):
        assert earlier_end <= later_start


def test_concurrent_reschedules_of_one_appointment_move_it_once(clinic):
    appointment = AppointmentFactory(
        practitioner=clinic.practitioner,
        patient=clinic.patient,
        reason=clinic.reason,
        start=clinic.slot,
    )
    client = APIClient()
    client.force_login(clinic.patient.user)
    url = f"{API}/appointments/{appointment.pk}/reschedule/"
    targets = [clinic.slot + timedelta(hours=1, minutes=30 * n) for n in range(8)]

    def reschedule_to(start: Any) -> Callable[[], int]:
        return lambda: client.post(url, {"start": start.isoformat()}, format="json").status_code

    statuses = race([reschedule_to(start) for start in targets])

    assert Counter(statuses) == {200: 1, 400: len(targets) - 1}
    assert len(active_intervals(clinic.practitioner.pk)) == 1


# --- The exclusion constraint itself ----------------------------------------------------------


@pytest.mark.django_db
def test_the_service_answers_slot_taken_when_only_the_constraint_catches_the_overlap(
    clinic, monkeypatch
):
    # As if a writer outside the service (bypassing its checks and the agenda lock) had
    # committed an overlapping row between the checks and the insert.
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)
    monkeypatch.setattr(services, "ensure_bookable", lambda **kwargs: None)
    monkeypatch.setattr(services, "ensure_free", lambda **kwargs: None)

    with pytest.raises(SlotUnavailable) as refused:
        services.book_appointment(
            actor=make_actor(clinic.patient.user),
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=clinic.slot + timedelta(minutes=15),
            patient=clinic.patient,
        )

    assert refused.value.__cause__.__cause__.sqlstate == "23P01"
    assert Appointment.objects.count() == 1  # and the transaction is still usable


@pytest.mark.django_db
def test_the_database_refuses_an_overlapping_active_appointment(clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        AppointmentFactory(
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=clinic.slot + timedelta(minutes=15),
        )

    assert refused.value.__cause__.sqlstate == "23P01"  # exclusion_violation


@pytest.mark.django_db
@pytest.mark.parametrize("status", [s for s in Appointment.Status if s != "cancelled"])
def test_every_active_status_takes_part_in_the_constraint(clinic, status):
    AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot, status=status
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        AppointmentFactory(
            practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot
        )


@pytest.mark.django_db
def test_the_database_accepts_an_overlapping_cancelled_appointment(clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        status=Appointment.Status.CANCELLED,
    )

    assert Appointment.objects.filter(start=clinic.slot).count() == 2


@pytest.mark.django_db
def test_the_database_accepts_touching_and_other_practitioners_appointments(clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot + timedelta(minutes=30),  # '[)': ends and starts may touch
    )
    AppointmentFactory(start=clinic.slot)  # another practitioner

    assert Appointment.objects.filter(status__in=ACTIVE_STATUSES).count() == 3


@pytest.mark.django_db
def test_the_database_refuses_reactivating_a_cancelled_appointment_over_another(clinic):
    cancelled = AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        status=Appointment.Status.CANCELLED,
    )
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    cancelled.status = Appointment.Status.BOOKED
    with pytest.raises(IntegrityError), transaction.atomic():
        cancelled.save()
