"""Booking services: who may book, cancel, reschedule and mark status, what is refused, and the
audit events each write leaves. The `clinic` fixture is open every day 08:00-18:00 in Paris with a
30-minute reason; it is Monday 1 June 2026, 08:00 there, and `clinic.slot` is tomorrow 09:00."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import OperationalError

from accounts.models import Role
from audit.actors import system_actor
from audit.models import AccessEvent, Action, Channel
from booking.errors import (
    InvalidTransition,
    NotAllowed,
    NotVisible,
    SlotNotOffered,
    SlotUnavailable,
    TooLateToCancel,
)
from booking.models import Appointment
from booking.services import (
    book_appointment,
    cancel_appointment,
    mark_status,
    reschedule_appointment,
)
from practitioners.models import StaffAccess, VisitReason, WeeklyHours
from tests.factories import (
    AbsenceFactory,
    AppointmentFactory,
    PatientFactory,
    RelativeFactory,
    UserFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    make_actor,
    secretary_of,
)

EVENT_FIELDS = (
    "action",
    "actor_kind",
    "actor_user_id",
    "actor_role",
    "channel",
    "appointment_id",
    "patient_id",
    "practitioner_id",
    "on_behalf_of_id",
)


def recorded_events() -> list[dict[str, Any]]:
    return list(AccessEvent.objects.order_by("id").values(*EVENT_FIELDS))


def expected_event(
    *, action: str, actor_user: Any, appointment: Appointment, on_behalf_of: int | None = None
) -> dict[str, Any]:
    return {
        "action": action,
        "actor_kind": "user",
        "actor_user_id": actor_user.pk,
        "actor_role": actor_user.role,
        "channel": Channel.API,
        "appointment_id": appointment.pk,
        "patient_id": appointment.patient_id,
        "practitioner_id": appointment.practitioner_id,
        "on_behalf_of_id": on_behalf_of,
    }


def book(clinic: SimpleNamespace, **overrides: Any) -> Appointment:
    arguments: dict[str, Any] = {
        "actor": make_actor(clinic.patient.user),
        "practitioner": clinic.practitioner,
        "reason": clinic.reason,
        "start": clinic.slot,
        "patient": clinic.patient,
        "channel": Appointment.Channel.API,
    }
    arguments.update(overrides)
    return book_appointment(**arguments)


def booked_at(clinic: SimpleNamespace, start: datetime, **fields: Any) -> Appointment:
    fields.setdefault("patient", clinic.patient)
    return AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, start=start, **fields
    )


def today_at(clinic: SimpleNamespace, hour: int, minute: int = 0) -> datetime:
    return clinic.slot.replace(hour=hour, minute=minute) - timedelta(days=1)


# --- Booking: who for whom ------------------------------------------------------------------


def test_patient_books_a_free_slot_for_themselves(clinic):
    appointment = book(clinic)

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment.start == clinic.slot
    assert appointment.end == clinic.slot + timedelta(minutes=30)
    assert appointment.patient == clinic.patient
    assert appointment.relative is None
    assert appointment.channel == Appointment.Channel.API
    assert appointment.booked_by == clinic.patient.user
    assert recorded_events() == [
        expected_event(
            action=Action.CREATE, actor_user=clinic.patient.user, appointment=appointment
        )
    ]


def test_patient_books_for_a_relative_they_manage(clinic):
    child = RelativeFactory(managed_by=clinic.patient)

    appointment = book(clinic, relative=child)

    assert appointment.relative == child
    assert appointment.patient == clinic.patient
    assert recorded_events() == [
        expected_event(
            action=Action.CREATE, actor_user=clinic.patient.user, appointment=appointment
        )
    ]


def test_booking_for_the_relative_of_another_patient_is_refused(clinic):
    someone_elses_child = RelativeFactory()

    with pytest.raises(SlotNotOffered) as refused:
        book(clinic, relative=someone_elses_child)

    assert refused.value.field == "relative"
    assert not Appointment.objects.exists()
    assert not AccessEvent.objects.exists()


def test_practitioner_books_for_a_patient_in_their_own_agenda(clinic):
    practitioner_user = clinic.practitioner.user

    appointment = book(clinic, actor=make_actor(practitioner_user))

    assert appointment.booked_by == practitioner_user
    assert recorded_events() == [
        expected_event(action=Action.CREATE, actor_user=practitioner_user, appointment=appointment)
    ]


def test_secretary_with_manage_access_books_on_behalf_of_the_practitioner(clinic):
    secretary = secretary_of(clinic.practitioner, level=StaffAccess.Level.MANAGE)

    appointment = book(clinic, actor=make_actor(secretary))

    assert recorded_events() == [
        expected_event(
            action=Action.CREATE,
            actor_user=secretary,
            appointment=appointment,
            on_behalf_of=clinic.practitioner.pk,
        )
    ]


def test_secretary_with_view_access_may_not_book(clinic):
    secretary = secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW)

    with pytest.raises(NotAllowed):
        book(clinic, actor=make_actor(secretary))

    assert not Appointment.objects.exists()
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize(
    "make_user",
    [
        pytest.param(lambda clinic: None, id="anonymous"),
        pytest.param(lambda clinic: UserFactory(role=Role.ADMIN), id="admin"),
        pytest.param(lambda clinic: PatientFactory().user, id="another-patient"),
        pytest.param(
            lambda clinic: secretary_of(VisitReasonFactory().practitioner),
            id="secretary-of-another-practitioner",
        ),
        pytest.param(
            lambda clinic: VisitReasonFactory().practitioner.user,
            id="another-practitioner",
        ),
    ],
)
def test_only_the_patient_or_the_practice_may_book(clinic, make_user):
    with pytest.raises(NotAllowed):
        book(clinic, actor=make_actor(make_user(clinic)))

    assert not Appointment.objects.exists()
    assert not AccessEvent.objects.exists()


# --- Booking: starts the engine does not offer ------------------------------------------------


def _outside_hours(clinic):
    return {"start": clinic.slot.replace(hour=18)}  # closes at 18:00


def _before_opening(clinic):
    return {"start": clinic.slot.replace(hour=7, minute=30)}


def _in_an_absence(clinic):
    AbsenceFactory(
        practitioner=clinic.practitioner,
        start=clinic.slot - timedelta(hours=1),
        end=clinic.slot + timedelta(hours=3),
    )
    return {}


def _in_the_past(clinic):
    return {"start": clinic.slot - timedelta(days=2)}


def _misaligned(clinic):
    return {"start": clinic.slot.replace(minute=10)}


def _reason_of_another_practitioner(clinic):
    return {"reason": VisitReasonFactory(duration_minutes=30)}


def _inactive_reason(clinic):
    clinic.reason.active = False
    clinic.reason.save()
    return {}


def _hours_limited_to_another_reason(clinic):
    other = VisitReasonFactory(practitioner=clinic.practitioner)
    tomorrow = WeeklyHours.objects.get(
        practitioner=clinic.practitioner, weekday=clinic.slot.weekday()
    )
    tomorrow.reasons.set([other])
    return {}


def _within_minimum_notice(clinic):
    return {"start": today_at(clinic, 8, 30)}  # now 08:00, notice 60 minutes


def _beyond_horizon(clinic):
    return {"start": clinic.slot + timedelta(days=clinic.practitioner.booking_horizon_days)}


def _online_booking_off(clinic):
    clinic.practitioner.online_booking_enabled = False
    clinic.practitioner.save()
    return {}


def _reason_not_bookable_online(clinic):
    clinic.reason.online_bookable = False
    clinic.reason.save()
    return {}


def _new_patient_reason_for_an_existing_patient(clinic):
    booked_at(clinic, clinic.slot + timedelta(days=7))
    clinic.reason.patient_kind = VisitReason.PatientKind.NEW
    clinic.reason.save()
    return {}


def _existing_patient_reason_for_a_new_patient(clinic):
    clinic.reason.patient_kind = VisitReason.PatientKind.EXISTING
    clinic.reason.save()
    return {}


def _no_new_patients(clinic):
    clinic.practitioner.accepts_new_patients = False
    clinic.practitioner.save()
    return {}


REFUSED_FOR_EVERYONE = [
    _outside_hours,
    _before_opening,
    _in_an_absence,
    _in_the_past,
    _misaligned,
    _reason_of_another_practitioner,
    _inactive_reason,
    _hours_limited_to_another_reason,
]
ONLINE_RULES = [
    _within_minimum_notice,
    _beyond_horizon,
    _online_booking_off,
    _reason_not_bookable_online,
    _new_patient_reason_for_an_existing_patient,
    _existing_patient_reason_for_a_new_patient,
    _no_new_patients,
]


def _case_id(case: Callable) -> str:
    return case.__name__.strip("_").replace("_", "-")


@pytest.mark.parametrize("case", REFUSED_FOR_EVERYONE + ONLINE_RULES, ids=_case_id)
def test_patient_may_not_book_a_start_that_is_not_offered(clinic, case):
    overrides = case(clinic)
    before = Appointment.objects.count()

    with pytest.raises(SlotNotOffered):
        book(clinic, **overrides)

    assert Appointment.objects.count() == before
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize("case", REFUSED_FOR_EVERYONE, ids=_case_id)
def test_practice_may_not_book_a_start_outside_the_agenda_either(clinic, case):
    with pytest.raises(SlotNotOffered):
        book(clinic, actor=make_actor(clinic.practitioner.user), **case(clinic))


@pytest.mark.parametrize("case", ONLINE_RULES, ids=_case_id)
def test_practice_bypasses_the_online_booking_rules(clinic, case):
    secretary = secretary_of(clinic.practitioner)

    appointment = book(clinic, actor=make_actor(secretary), **case(clinic))

    assert appointment.status == Appointment.Status.BOOKED


def test_existing_patient_books_a_reason_for_existing_patients(clinic):
    booked_at(clinic, clinic.slot + timedelta(days=7))
    clinic.reason.patient_kind = VisitReason.PatientKind.EXISTING
    clinic.reason.save()
    clinic.practitioner.accepts_new_patients = False
    clinic.practitioner.save()

    assert book(clinic).status == Appointment.Status.BOOKED


def test_a_parents_appointments_do_not_make_their_child_an_existing_patient(clinic):
    booked_at(clinic, clinic.slot + timedelta(days=7))
    clinic.reason.patient_kind = VisitReason.PatientKind.NEW
    clinic.reason.save()
    child = RelativeFactory(managed_by=clinic.patient)

    appointment = book(clinic, relative=child)

    assert appointment.relative == child


def test_cancelled_appointments_do_not_make_an_existing_patient(clinic):
    booked_at(clinic, clinic.slot + timedelta(days=7), status=Appointment.Status.CANCELLED)
    clinic.practitioner.accepts_new_patients = False
    clinic.practitioner.save()

    with pytest.raises(SlotNotOffered):
        book(clinic)


def test_staff_may_not_book_further_than_two_years_ahead(clinic):
    with pytest.raises(SlotNotOffered):
        book(
            clinic,
            actor=make_actor(clinic.practitioner.user),
            start=clinic.slot + timedelta(days=3 * 365),
        )


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(datetime(1, 1, 2, 9, tzinfo=UTC), id="year-1"),
        pytest.param(datetime(9999, 12, 31, 9, tzinfo=UTC), id="year-9999"),
    ],
)
def test_extreme_starts_are_refused_not_crashing(clinic, start):
    with pytest.raises(SlotNotOffered):
        book(clinic, start=start)
    with pytest.raises(SlotNotOffered):
        book(clinic, actor=make_actor(clinic.practitioner.user), start=start)


def test_a_start_given_in_another_time_zone_is_the_same_instant(clinic):
    appointment = book(clinic, start=clinic.slot.astimezone(UTC))

    assert appointment.start == clinic.slot


def test_a_night_slot_in_the_repeated_autumn_hour_is_bookable(clinic):
    # 25 October 2026, Paris: 03:00 CEST falls back to 02:00 CET. An aware local 02:30 means the
    # first occurrence (fold=0), which the engine offers; PEP 495 makes it unequal to every UTC
    # instant, so the offer must be checked in UTC.
    night = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=30)
    sunday = WeeklyHours.Weekday.SUNDAY
    WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=sunday).update(
        start_time=time(0)
    )
    start = datetime(2026, 10, 25, 2, 30, tzinfo=clinic.tz)

    appointment = book(
        clinic, actor=make_actor(clinic.practitioner.user), reason=night, start=start
    )

    appointment.refresh_from_db()
    assert appointment.start.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


# --- Booking: taken slots -------------------------------------------------------------------


def test_booking_a_taken_slot_raises_slot_unavailable(clinic):
    booked_at(clinic, clinic.slot, patient=PatientFactory())

    with pytest.raises(SlotUnavailable):
        book(clinic)

    assert Appointment.objects.count() == 1
    assert not AccessEvent.objects.exists()


def test_booking_a_slot_overlapped_by_a_longer_appointment_raises_slot_unavailable(clinic):
    long_reason = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=long_reason,
        start=clinic.slot - timedelta(minutes=30),
    )

    with pytest.raises(SlotUnavailable):
        book(clinic)


def test_a_deadlock_on_the_insert_answers_slot_taken(clinic, monkeypatch):
    # PostgreSQL breaks a deadlock between overlapping inserts by failing one of them.
    class DeadlockDetected(Exception):
        sqlstate = "40P01"

    def deadlocked_create(**fields: Any) -> Appointment:
        try:
            raise DeadlockDetected
        except DeadlockDetected as cause:
            raise OperationalError("deadlock detected") from cause

    monkeypatch.setattr(Appointment.objects, "create", deadlocked_create)

    with pytest.raises(SlotUnavailable):
        book(clinic)


def test_another_database_error_on_the_insert_is_not_disguised(clinic, monkeypatch):
    def failing_create(**fields: Any) -> Appointment:
        raise OperationalError("connection lost")

    monkeypatch.setattr(Appointment.objects, "create", failing_create)

    with pytest.raises(OperationalError):
        book(clinic)


def test_a_cancelled_appointment_frees_its_slot(clinic):
    booked_at(clinic, clinic.slot, patient=PatientFactory(), status=Appointment.Status.CANCELLED)

    assert book(clinic).status == Appointment.Status.BOOKED


def test_an_appointment_of_another_practitioner_does_not_take_the_slot(clinic):
    AppointmentFactory(start=clinic.slot)

    assert book(clinic).start == clinic.slot


# --- Cancel ---------------------------------------------------------------------------------


def test_patient_cancels_before_the_cancellation_notice(clinic):
    appointment = booked_at(clinic, clinic.slot)  # 25 hours ahead, notice 24 hours

    cancel_appointment(
        actor=make_actor(clinic.patient.user), appointment_id=appointment.pk, reason="ill"
    )

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancelled_by == Appointment.CancelledBy.PATIENT
    assert appointment.cancelled_by_user == clinic.patient.user
    assert appointment.cancellation_reason == "ill"
    assert appointment.cancelled_at is not None
    assert recorded_events() == [
        expected_event(
            action=Action.CANCEL, actor_user=clinic.patient.user, appointment=appointment
        )
    ]


def test_patient_may_not_cancel_within_the_cancellation_notice(clinic):
    appointment = booked_at(clinic, today_at(clinic, 14))

    with pytest.raises(TooLateToCancel):
        cancel_appointment(actor=make_actor(clinic.patient.user), appointment_id=appointment.pk)

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize("role", ["practitioner", "secretary"])
def test_practice_cancels_at_any_time(clinic, role):
    appointment = booked_at(clinic, today_at(clinic, 9))
    user = clinic.practitioner.user if role == "practitioner" else secretary_of(clinic.practitioner)

    cancel_appointment(actor=make_actor(user), appointment_id=appointment.pk)

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancelled_by == Appointment.CancelledBy.PRACTICE
    on_behalf_of = clinic.practitioner.pk if role == "secretary" else None
    assert recorded_events() == [
        expected_event(
            action=Action.CANCEL,
            actor_user=user,
            appointment=appointment,
            on_behalf_of=on_behalf_of,
        )
    ]


def test_system_cancels_and_is_recorded_under_its_name(clinic):
    appointment = booked_at(clinic, today_at(clinic, 9))

    cancel_appointment(actor=system_actor("purge_expired"), appointment_id=appointment.pk)

    appointment.refresh_from_db()
    assert appointment.cancelled_by == Appointment.CancelledBy.SYSTEM
    event = AccessEvent.objects.get()
    assert (event.actor_kind, event.actor_label, event.channel) == (
        "system",
        "purge_expired",
        Channel.TASK,
    )


def test_cancelling_a_cancelled_appointment_is_an_invalid_transition(clinic):
    appointment = booked_at(clinic, clinic.slot, status=Appointment.Status.CANCELLED)

    with pytest.raises(InvalidTransition):
        cancel_appointment(
            actor=make_actor(clinic.practitioner.user), appointment_id=appointment.pk
        )


@pytest.mark.parametrize(
    "status", [Appointment.Status.ARRIVED, Appointment.Status.DONE, Appointment.Status.NO_SHOW]
)
def test_an_appointment_that_took_place_cannot_be_cancelled(clinic, status):
    appointment = booked_at(clinic, today_at(clinic, 7), status=status)

    with pytest.raises(InvalidTransition):
        cancel_appointment(
            actor=make_actor(clinic.practitioner.user), appointment_id=appointment.pk
        )

    appointment.refresh_from_db()
    assert appointment.status == status


@pytest.mark.parametrize(
    "make_user",
    [
        pytest.param(lambda clinic: PatientFactory().user, id="another-patient"),
        pytest.param(
            lambda clinic: VisitReasonFactory().practitioner.user, id="other-practitioner"
        ),
        pytest.param(lambda clinic: UserFactory(role=Role.ADMIN), id="admin-on-the-api"),
        pytest.param(lambda clinic: None, id="anonymous"),
    ],
)
def test_cancelling_an_appointment_one_may_not_see_raises_not_visible(clinic, make_user):
    appointment = booked_at(clinic, clinic.slot)

    with pytest.raises(NotVisible):
        cancel_appointment(actor=make_actor(make_user(clinic)), appointment_id=appointment.pk)

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_secretary_with_view_access_may_not_cancel(clinic):
    appointment = booked_at(clinic, clinic.slot)
    secretary = secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW)

    with pytest.raises(NotAllowed):
        cancel_appointment(actor=make_actor(secretary), appointment_id=appointment.pk)


def test_cancelling_an_unknown_appointment_raises_not_visible(clinic):
    with pytest.raises(NotVisible):
        cancel_appointment(actor=make_actor(clinic.patient.user), appointment_id=987654)


# --- Reschedule -----------------------------------------------------------------------------


def test_patient_reschedules_atomically(clinic):
    old = booked_at(clinic, clinic.slot)
    new_start = clinic.slot + timedelta(days=1, hours=2)

    new = reschedule_appointment(
        actor=make_actor(clinic.patient.user), appointment_id=old.pk, start=new_start
    )

    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == Appointment.Status.CANCELLED
    assert old.cancelled_by == Appointment.CancelledBy.PATIENT
    assert new.status == Appointment.Status.BOOKED
    assert new.start == new_start
    assert new.rescheduled_from == old
    assert (new.patient, new.reason, new.practitioner) == (
        old.patient,
        old.reason,
        old.practitioner,
    )
    assert recorded_events() == [
        expected_event(action=Action.RESCHEDULE, actor_user=clinic.patient.user, appointment=old),
        expected_event(action=Action.CREATE, actor_user=clinic.patient.user, appointment=new),
    ]


def test_rescheduling_keeps_the_relative(clinic):
    child = RelativeFactory(managed_by=clinic.patient)
    old = booked_at(clinic, clinic.slot, relative=child)

    new = reschedule_appointment(
        actor=make_actor(clinic.patient.user),
        appointment_id=old.pk,
        start=clinic.slot + timedelta(hours=1),
    )

    assert new.relative == child


def test_rescheduling_to_a_taken_slot_changes_nothing(clinic):
    old = booked_at(clinic, clinic.slot)
    other = booked_at(clinic, clinic.slot + timedelta(hours=2), patient=PatientFactory())

    with pytest.raises(SlotUnavailable):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user), appointment_id=old.pk, start=other.start
        )

    old.refresh_from_db()
    assert old.status == Appointment.Status.BOOKED
    assert old.cancelled_at is None
    assert Appointment.objects.count() == 2
    assert not AccessEvent.objects.exists()


def test_rescheduling_to_a_start_not_offered_changes_nothing(clinic):
    old = booked_at(clinic, clinic.slot)

    with pytest.raises(SlotNotOffered):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user),
            appointment_id=old.pk,
            start=clinic.slot.replace(minute=10),
        )

    old.refresh_from_db()
    assert old.status == Appointment.Status.BOOKED
    assert Appointment.objects.count() == 1


def test_rescheduling_to_the_same_start_is_refused(clinic):
    old = booked_at(clinic, clinic.slot)

    with pytest.raises(SlotNotOffered):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user), appointment_id=old.pk, start=clinic.slot
        )


def test_rescheduling_may_overlap_its_own_old_slot(clinic):
    # Two overlapping opening rules give a 60-minute reason a start every half hour.
    WeeklyHoursFactory(
        practitioner=clinic.practitioner,
        weekday=clinic.slot.weekday(),
        start_time=time(8, 30),
        end_time=time(12),
    )
    hour_long = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    old = AppointmentFactory(
        practitioner=clinic.practitioner,
        patient=clinic.patient,
        reason=hour_long,
        start=clinic.slot,
    )

    new = reschedule_appointment(
        actor=make_actor(clinic.patient.user),
        appointment_id=old.pk,
        start=clinic.slot + timedelta(minutes=30),
    )

    assert new.start < old.end
    assert new.status == Appointment.Status.BOOKED


def test_patient_may_not_reschedule_within_the_cancellation_notice(clinic):
    old = booked_at(clinic, today_at(clinic, 14))

    with pytest.raises(TooLateToCancel):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user), appointment_id=old.pk, start=clinic.slot
        )

    old.refresh_from_db()
    assert old.status == Appointment.Status.BOOKED


def test_secretary_reschedules_within_the_notice_on_behalf_of_the_practitioner(clinic):
    old = booked_at(clinic, today_at(clinic, 14))
    secretary = secretary_of(clinic.practitioner)

    new = reschedule_appointment(
        actor=make_actor(secretary), appointment_id=old.pk, start=today_at(clinic, 8, 30)
    )

    old.refresh_from_db()
    assert old.cancelled_by == Appointment.CancelledBy.PRACTICE
    assert recorded_events() == [
        expected_event(
            action=Action.RESCHEDULE,
            actor_user=secretary,
            appointment=old,
            on_behalf_of=clinic.practitioner.pk,
        ),
        expected_event(
            action=Action.CREATE,
            actor_user=secretary,
            appointment=new,
            on_behalf_of=clinic.practitioner.pk,
        ),
    ]


def test_rescheduling_another_patients_appointment_raises_not_visible(clinic):
    old = booked_at(clinic, clinic.slot, patient=PatientFactory())

    with pytest.raises(NotVisible):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user),
            appointment_id=old.pk,
            start=clinic.slot + timedelta(hours=1),
        )


def test_rescheduling_a_cancelled_appointment_is_an_invalid_transition(clinic):
    old = booked_at(clinic, clinic.slot, status=Appointment.Status.CANCELLED)

    with pytest.raises(InvalidTransition):
        reschedule_appointment(
            actor=make_actor(clinic.patient.user),
            appointment_id=old.pk,
            start=clinic.slot + timedelta(hours=1),
        )


# --- Status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Appointment.Status.BOOKED, Appointment.Status.ARRIVED),
        (Appointment.Status.BOOKED, Appointment.Status.DONE),
        (Appointment.Status.BOOKED, Appointment.Status.NO_SHOW),
        (Appointment.Status.ARRIVED, Appointment.Status.DONE),
        (Appointment.Status.ARRIVED, Appointment.Status.BOOKED),
        (Appointment.Status.NO_SHOW, Appointment.Status.BOOKED),
        (Appointment.Status.NO_SHOW, Appointment.Status.ARRIVED),
        (Appointment.Status.DONE, Appointment.Status.ARRIVED),
    ],
)
def test_practitioner_marks_an_allowed_status(clinic, before, after):
    appointment = booked_at(clinic, today_at(clinic, 7), status=before)  # began an hour ago

    mark_status(
        actor=make_actor(clinic.practitioner.user), appointment_id=appointment.pk, status=after
    )

    appointment.refresh_from_db()
    assert appointment.status == after
    assert recorded_events() == [
        expected_event(
            action=Action.STATUS, actor_user=clinic.practitioner.user, appointment=appointment
        )
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Appointment.Status.BOOKED, Appointment.Status.CANCELLED),
        (Appointment.Status.BOOKED, Appointment.Status.BOOKED),
        (Appointment.Status.DONE, Appointment.Status.NO_SHOW),
        (Appointment.Status.DONE, Appointment.Status.BOOKED),
        (Appointment.Status.ARRIVED, Appointment.Status.NO_SHOW),
        (Appointment.Status.CANCELLED, Appointment.Status.BOOKED),
        (Appointment.Status.CANCELLED, Appointment.Status.ARRIVED),
        (Appointment.Status.BOOKED, "lost"),
    ],
)
def test_a_status_change_outside_the_workflow_is_refused(clinic, before, after):
    appointment = booked_at(clinic, today_at(clinic, 7), status=before)

    with pytest.raises(InvalidTransition):
        mark_status(
            actor=make_actor(clinic.practitioner.user), appointment_id=appointment.pk, status=after
        )

    appointment.refresh_from_db()
    assert appointment.status == before
    assert not AccessEvent.objects.exists()


def test_no_show_before_the_start_is_refused(clinic):
    appointment = booked_at(clinic, clinic.slot)

    with pytest.raises(InvalidTransition):
        mark_status(
            actor=make_actor(clinic.practitioner.user),
            appointment_id=appointment.pk,
            status=Appointment.Status.NO_SHOW,
        )


def test_patient_may_not_change_the_status_of_their_own_appointment(clinic):
    appointment = booked_at(clinic, today_at(clinic, 7))

    with pytest.raises(NotAllowed) as refused:
        mark_status(
            actor=make_actor(clinic.patient.user),
            appointment_id=appointment.pk,
            status=Appointment.Status.ARRIVED,
        )

    assert refused.value.appointment_id == appointment.pk
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


def test_secretary_with_view_access_may_not_change_a_status(clinic):
    appointment = booked_at(clinic, today_at(clinic, 7))
    secretary = secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW)

    with pytest.raises(NotAllowed):
        mark_status(
            actor=make_actor(secretary),
            appointment_id=appointment.pk,
            status=Appointment.Status.ARRIVED,
        )


def test_secretary_with_manage_access_marks_arrival_on_behalf_of_the_practitioner(clinic):
    appointment = booked_at(clinic, today_at(clinic, 7))
    secretary = secretary_of(clinic.practitioner)

    mark_status(
        actor=make_actor(secretary),
        appointment_id=appointment.pk,
        status=Appointment.Status.ARRIVED,
    )

    assert recorded_events() == [
        expected_event(
            action=Action.STATUS,
            actor_user=secretary,
            appointment=appointment,
            on_behalf_of=clinic.practitioner.pk,
        )
    ]


def test_changing_the_status_of_another_practitioners_appointment_raises_not_visible(clinic):
    appointment = AppointmentFactory()

    with pytest.raises(NotVisible):
        mark_status(
            actor=make_actor(clinic.practitioner.user),
            appointment_id=appointment.pk,
            status=Appointment.Status.ARRIVED,
        )
