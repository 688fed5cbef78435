"""The maintained next-free-slots table (booking.next_slots) always equals the engine's answer."""

import random
from datetime import datetime, time, timedelta

import pytest
import time_machine
from django.core.management import call_command

from booking import services
from booking.models import Appointment, NextSlots
from booking.next_slots import (
    SLOTS_KEPT,
    next_slots_for,
    refresh_next_slots,
    with_online_reasons,
)
from booking.slots import booking_window, compute_slots, load_schedules
from practitioners.models import Absence, Practitioner, VisitReason, WeeklyHours
from tests.factories import (
    AbsenceFactory,
    PatientFactory,
    PractitionerFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    make_actor,
    secretary_of,
)

ONE_DAY = timedelta(days=1)


def engine_answer(practitioner_id: int) -> dict[int, list[datetime]]:
    """The first slots per online reason, computed fresh over the whole horizon in one go."""
    from django.utils import timezone

    now = timezone.now()
    practitioner = with_online_reasons(Practitioner.objects.filter(pk=practitioner_id)).get()
    if not practitioner.online_booking_enabled:
        return {}
    window = booking_window(practitioner, now=now)
    assert window.latest_day is not None
    today = now.astimezone(practitioner.practice.tz).date()
    first_day, last_day = today - ONE_DAY, window.latest_day + ONE_DAY
    schedule = load_schedules([practitioner], first_day, last_day)[practitioner.pk]
    return {
        reason.pk: compute_slots(
            practitioner=practitioner,
            reason=reason,
            schedule=schedule,
            first_day=first_day,
            last_day=last_day,
            window=window,
        )[:SLOTS_KEPT]
        for reason in practitioner.online_reasons  # type: ignore[attr-defined]
    }


def table_answer(practitioner_id: int) -> dict[int, list[datetime]]:
    answer = {}
    for row in NextSlots.objects.filter(practitioner_id=practitioner_id):
        starts = [datetime.fromisoformat(start) for start in row.slots]
        assert row.first_slot == (starts[0] if starts else None)
        answer[row.reason_id] = starts
    return answer


@pytest.fixture
def agenda(db, frozen_now):
    """Two practitioners with two reasons each, one of them restricted to some hours."""
    practitioners = []
    for notice in (60, 0):
        practitioner = PractitionerFactory(minimum_notice_minutes=notice, booking_horizon_days=20)
        short = VisitReasonFactory(practitioner=practitioner, duration_minutes=15)
        long = VisitReasonFactory(practitioner=practitioner, duration_minutes=45, label="Long")
        for weekday in (0, 2, 4):
            WeeklyHoursFactory(
                practitioner=practitioner, weekday=weekday, start_time=time(8), end_time=time(10)
            )
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=1, start_time=time(14), end_time=time(16)
        ).reasons.add(long)
        practitioners.append((practitioner, [short, long]))
    refresh_next_slots(practitioner_ids=[p.pk for p, _reasons in practitioners])
    return practitioners


def _random_change(rng: random.Random, practitioner: Practitioner, reasons: list, actor) -> None:
    """One booking, cancellation, hours, absence, reason or settings change, as the app makes
    them: through the services, or saved models (the admin's path)."""
    from django.utils import timezone

    now = timezone.now()
    action = rng.choice(["book", "book", "book", "cancel", "cancel", "hours", "absence", "other"])
    if action == "book":
        reason = rng.choice(reasons)
        reason.refresh_from_db()
        offered = engine_answer(practitioner.pk).get(reason.pk) or []
        if offered:
            services.book_appointment(
                actor=actor,
                practitioner=Practitioner.objects.get(pk=practitioner.pk),
                reason=reason,
                start=rng.choice(offered),
                patient=PatientFactory(),
                channel=Appointment.Channel.PHONE,
            )
    elif action == "cancel":
        active = list(
            Appointment.objects.filter(
                practitioner=practitioner, status=Appointment.Status.BOOKED
            ).values_list("pk", flat=True)
        )
        if active:
            services.cancel_appointment(actor=actor, appointment_id=rng.choice(active))
    elif action == "hours":
        existing = list(WeeklyHours.objects.filter(practitioner=practitioner))
        if existing and rng.random() < 0.4:
            rng.choice(existing).delete()
        else:
            start = rng.randint(7, 17)
            hours = WeeklyHoursFactory(
                practitioner=practitioner,
                weekday=rng.randint(0, 6),
                start_time=time(start),
                end_time=time(start + rng.randint(1, 3)),
            )
            if rng.random() < 0.3:
                hours.reasons.add(rng.choice(reasons))
    elif action == "absence":
        existing = list(Absence.objects.filter(practitioner=practitioner))
        if existing and rng.random() < 0.4:
            rng.choice(existing).delete()
        else:
            start = now + timedelta(hours=rng.randint(0, 24 * 6))
            AbsenceFactory(
                practitioner=practitioner,
                start=start,
                end=start + timedelta(hours=rng.randint(1, 30)),
            )
    elif rng.random() < 0.5:
        reason = VisitReason.objects.get(pk=rng.choice(reasons).pk)
        reason.online_bookable = not reason.online_bookable
        reason.save()
    else:
        practitioner.minimum_notice_minutes = rng.choice([0, 30, 120, 24 * 60])
        practitioner.online_booking_enabled = rng.random() < 0.9
        practitioner.save()


def test_table_equals_the_engine_after_random_changes(agenda, django_capture_on_commit_callbacks):
    rng = random.Random(20260601)  # seeded: a failure replays
    actors = {p.pk: make_actor(secretary_of(p)) for p, _reasons in agenda}
    for step in range(250):
        practitioner, reasons = rng.choice(agenda)
        with django_capture_on_commit_callbacks(execute=True):
            _random_change(rng, practitioner, reasons, actors[practitioner.pk])
        for other, _reasons in agenda:
            assert table_answer(other.pk) == engine_answer(other.pk), f"step {step}"


def test_stale_rows_are_recomputed_when_read_as_time_passes(agenda):
    practitioner, _reasons = agenda[0]
    before = table_answer(practitioner.pk)

    with time_machine.travel(timedelta(days=1, hours=3)):
        assert table_answer(practitioner.pk) == before  # nothing rewrote them yet
        page = list(with_online_reasons(Practitioner.objects.filter(pk=practitioner.pk)))
        shown = next_slots_for(page)[practitioner.pk]
        fresh = engine_answer(practitioner.pk)

        assert table_answer(practitioner.pk) == fresh != before
        assert [slot.start for slot in shown] == sorted({s for v in fresh.values() for s in v})[
            :SLOTS_KEPT
        ]


def test_a_row_is_valid_until_its_first_slot_is_within_the_notice(agenda):
    practitioner, _reasons = agenda[0]  # 60 minutes' notice
    for row in NextSlots.objects.filter(practitioner=practitioner):
        assert len(row.slots) == SLOTS_KEPT
        assert row.valid_until == row.first_slot - timedelta(minutes=60)


def test_a_row_without_slots_is_valid_for_an_hour(db, frozen_now):
    practitioner = PractitionerFactory()
    VisitReasonFactory(practitioner=practitioner)  # no hours

    refresh_next_slots(practitioner_ids=[practitioner.pk])

    row = NextSlots.objects.get(practitioner=practitioner)
    assert (row.slots, row.first_slot) == ([], None)
    assert row.valid_until == frozen_now + timedelta(hours=1)


def test_booking_and_cancelling_refresh_after_commit(clinic, django_capture_on_commit_callbacks):
    refresh_next_slots(practitioner_ids=[clinic.practitioner.pk])
    first = clinic.slot - ONE_DAY  # today 09:00: 08:00 now + 60 minutes' notice
    assert table_answer(clinic.practitioner.pk)[clinic.reason.pk][0] == first
    actor = make_actor(secretary_of(clinic.practitioner))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        appointment = services.book_appointment(
            actor=actor,
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            start=first,
            patient=clinic.patient,
        )
    assert callbacks
    assert table_answer(clinic.practitioner.pk)[clinic.reason.pk][0] == first + timedelta(
        minutes=30
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_appointment(actor=actor, appointment_id=appointment.pk)
    assert table_answer(clinic.practitioner.pk)[clinic.reason.pk][0] == first


def test_rows_go_when_the_practitioner_stops_booking_online(
    clinic, django_capture_on_commit_callbacks
):
    refresh_next_slots(practitioner_ids=[clinic.practitioner.pk])
    clinic.practitioner.online_booking_enabled = False

    with django_capture_on_commit_callbacks(execute=True):
        clinic.practitioner.save()

    assert not NextSlots.objects.filter(practitioner=clinic.practitioner).exists()


def test_refresh_batches_schedule_loads(db, frozen_now, django_assert_max_num_queries):
    practitioners = []
    for _ in range(12):
        practitioner = PractitionerFactory()
        VisitReasonFactory(practitioner=practitioner)
        VisitReasonFactory(practitioner=practitioner, duration_minutes=15)
        WeeklyHoursFactory(practitioner=practitioner, weekday=0)
        practitioners.append(practitioner.pk)

    # Savepoint pair, lock + reasons, 4 loads of one window, delete, upsert.
    with django_assert_max_num_queries(10):
        rows = refresh_next_slots(practitioner_ids=practitioners)

    assert rows == 24


def test_command_refreshes_all_or_only_stale_rows(agenda):
    NextSlots.objects.all().delete()
    call_command("refresh_next_slots", "--batch-size", "1")
    assert NextSlots.objects.count() == 4
    with time_machine.travel(timedelta(days=2)):
        call_command("refresh_next_slots", "--stale")
        for practitioner, _reasons in agenda:
            assert table_answer(practitioner.pk) == engine_answer(practitioner.pk)
