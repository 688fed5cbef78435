"""practitioners.services for the settings pages: who may change what, what is refused, and that
every change reaches the availability engine and the next-slots table (once, after commit)."""

from datetime import date, datetime, time, timedelta

import pytest
from django.db import transaction

from audit.models import Channel
from booking.errors import InvalidInput, NotAllowed, NotVisible
from booking.models import NextSlots
from booking.next_slots import refresh_next_slots
from booking.slots import free_slots_for
from practitioners import services
from practitioners.models import Absence, Practitioner, StaffAccess, VisitReason, WeeklyHours
from practitioners.services import BookingRules, HoursSpec, ReasonSpec
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    make_actor,
    secretary_of,
)

TUESDAY = 1  # 2 June 2026, the day after the frozen Monday
NEXT_TUESDAY = date(2026, 6, 2)


@pytest.fixture(autouse=True)
def _in_english():
    """Some tests match the services' messages, which are translated: read them in English."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def owner(clinic):
    return make_actor(clinic.practitioner.user, channel=Channel.WEB)


def first_slot(clinic) -> datetime | None:
    row = NextSlots.objects.filter(practitioner=clinic.practitioner, reason=clinic.reason).first()
    return row.first_slot if row else None


def tuesday_slots(clinic, reason=None) -> list[datetime]:
    return free_slots_for(
        practitioner=Practitioner.objects.select_related("practice").get(pk=clinic.practitioner.pk),
        reason=reason or clinic.reason,
        first_day=NEXT_TUESDAY,
        days=1,
    )


def at(clinic, hour: int, minute: int = 0, day: date = NEXT_TUESDAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clinic.tz)


# --- Who may change what ------------------------------------------------------------------------


def test_a_secretary_with_view_access_may_change_nothing(clinic):
    actor = make_actor(secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW))
    spec = HoursSpec(start_time=time(19), end_time=time(20))

    with pytest.raises(NotAllowed):
        services.add_weekly_hours(
            actor=actor, practitioner=clinic.practitioner, weekdays=[TUESDAY], spec=spec
        )
    with pytest.raises(NotAllowed):
        services.add_visit_reason(
            actor=actor,
            practitioner=clinic.practitioner,
            spec=ReasonSpec(label="Vaccin", duration_minutes=15),
        )
    with pytest.raises(NotAllowed):
        services.add_absence(
            actor=actor, practitioner=clinic.practitioner, start=at(clinic, 9), end=at(clinic, 10)
        )

    assert WeeklyHours.objects.filter(practitioner=clinic.practitioner).count() == 7
    assert not Absence.objects.exists()


def test_another_practitioner_may_not_change_this_agenda(clinic):
    stranger = make_actor(PractitionerFactory().user)

    with pytest.raises(NotAllowed):
        services.set_visit_reason_active(
            actor=stranger,
            practitioner=clinic.practitioner,
            reason_id=clinic.reason.pk,
            active=False,
        )

    clinic.reason.refresh_from_db()
    assert clinic.reason.active


def test_a_managing_secretary_changes_hours_but_not_the_booking_rules(clinic):
    actor = make_actor(secretary_of(clinic.practitioner))
    services.add_weekly_hours(
        actor=actor,
        practitioner=clinic.practitioner,
        weekdays=[TUESDAY],
        spec=HoursSpec(start_time=time(19), end_time=time(20)),
    )

    with pytest.raises(NotAllowed):
        services.update_booking_rules(
            actor=actor, practitioner=clinic.practitioner, rules=rules_of(clinic.practitioner)
        )


def test_an_object_of_another_agenda_is_not_found(clinic, owner):
    others = WeeklyHoursFactory(practitioner=PractitionerFactory())

    with pytest.raises(NotVisible):
        services.delete_weekly_hours(
            actor=owner, practitioner=clinic.practitioner, hours_id=others.pk
        )

    assert WeeklyHours.objects.filter(pk=others.pk).exists()


# --- Weekly hours -------------------------------------------------------------------------------


def test_overlapping_hours_on_the_same_day_are_refused(clinic, owner):
    with pytest.raises(InvalidInput, match="overlap"):
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[TUESDAY],
            spec=HoursSpec(start_time=time(17, 30), end_time=time(19)),
        )


def test_adjacent_hours_and_disjoint_validity_periods_are_accepted(clinic, owner):
    hours = WeeklyHours.objects.get(practitioner=clinic.practitioner, weekday=TUESDAY)
    hours.valid_until = date(2026, 6, 30)
    hours.save()

    services.add_weekly_hours(
        actor=owner,
        practitioner=clinic.practitioner,
        weekdays=[TUESDAY],
        spec=HoursSpec(start_time=time(18), end_time=time(19)),  # right after 08:00-18:00
    )
    services.add_weekly_hours(
        actor=owner,
        practitioner=clinic.practitioner,
        weekdays=[TUESDAY],
        spec=HoursSpec(start_time=time(9), end_time=time(12), valid_from=date(2026, 7, 1)),
    )

    assert (
        WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=TUESDAY).count() == 3
    )


def test_overlapping_validity_periods_are_refused(clinic, owner):
    hours = WeeklyHours.objects.get(practitioner=clinic.practitioner, weekday=TUESDAY)
    hours.valid_until = date(2026, 6, 30)
    hours.save()

    with pytest.raises(InvalidInput, match="overlap"):
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[TUESDAY],
            spec=HoursSpec(
                start_time=time(9),
                end_time=time(12),
                valid_from=date(2026, 6, 15),
                valid_until=date(2026, 7, 15),
            ),
        )


def test_hours_on_several_days_are_all_added_or_none(clinic, owner):
    WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday__in=[0, 2]).delete()

    with pytest.raises(InvalidInput):
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[0, TUESDAY, 2],  # Tuesday is already open at 08:00-18:00
            spec=HoursSpec(start_time=time(9), end_time=time(12)),
        )

    assert not WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=0).exists()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (HoursSpec(start_time=time(12), end_time=time(9)), "end_time"),
        (HoursSpec(start_time=time(9), end_time=time(9)), "end_time"),
        (
            HoursSpec(
                start_time=time(19),
                end_time=time(20),
                valid_from=date(2026, 7, 1),
                valid_until=date(2026, 6, 1),
            ),
            "valid_until",
        ),
    ],
)
def test_hours_that_do_not_make_sense_are_refused(clinic, owner, spec, field):
    with pytest.raises(InvalidInput) as refused:
        services.add_weekly_hours(
            actor=owner, practitioner=clinic.practitioner, weekdays=[TUESDAY], spec=spec
        )

    assert refused.value.field == field


def test_hours_restricted_to_a_reason_of_another_practitioner_are_refused(clinic, owner):
    foreign = VisitReasonFactory(practitioner=PractitionerFactory())

    with pytest.raises(InvalidInput) as refused:
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[TUESDAY],
            spec=HoursSpec(
                start_time=time(19), end_time=time(20), reason_ids=frozenset({foreign.pk})
            ),
        )

    assert refused.value.field == "reasons"


def test_changed_hours_change_the_slots_offered(clinic, owner):
    hours = WeeklyHours.objects.get(practitioner=clinic.practitioner, weekday=TUESDAY)

    services.change_weekly_hours(
        actor=owner,
        practitioner=clinic.practitioner,
        hours_id=hours.pk,
        weekday=TUESDAY,
        spec=HoursSpec(start_time=time(14), end_time=time(15)),
    )

    assert tuesday_slots(clinic) == [at(clinic, 14), at(clinic, 14, 30)]


def test_changing_hours_does_not_find_them_overlapping_themselves(clinic, owner):
    hours = WeeklyHours.objects.get(practitioner=clinic.practitioner, weekday=TUESDAY)

    services.change_weekly_hours(
        actor=owner,
        practitioner=clinic.practitioner,
        hours_id=hours.pk,
        weekday=TUESDAY,
        spec=HoursSpec(start_time=time(9), end_time=time(17)),
    )

    hours.refresh_from_db()
    assert (hours.start_time, hours.end_time) == (time(9), time(17))


def test_hours_restricted_to_a_reason_offer_only_that_reason(clinic, owner):
    other = VisitReasonFactory(practitioner=clinic.practitioner, duration_minutes=60)
    WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=TUESDAY).delete()

    services.add_weekly_hours(
        actor=owner,
        practitioner=clinic.practitioner,
        weekdays=[TUESDAY],
        spec=HoursSpec(start_time=time(9), end_time=time(11), reason_ids=frozenset({other.pk})),
    )

    assert tuesday_slots(clinic) == []
    assert tuesday_slots(clinic, reason=other) == [at(clinic, 9), at(clinic, 10)]


def test_a_change_refreshes_the_next_slots_once_after_commit(
    clinic, owner, django_capture_on_commit_callbacks
):
    refresh_next_slots(practitioner_ids=[clinic.practitioner.pk])
    assert first_slot(clinic) == at(clinic, 9, day=date(2026, 6, 1))  # 08:00 + 60 min notice
    WeeklyHours.objects.filter(practitioner=clinic.practitioner).delete()  # refresh not run

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[0, TUESDAY, 2, 3, 4],
            spec=HoursSpec(start_time=time(14), end_time=time(16)),
        )

    assert len(callbacks) == 1  # the signal receivers stood aside
    assert first_slot(clinic) == at(clinic, 14, day=date(2026, 6, 1))


def test_a_refused_change_refreshes_nothing(clinic, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(InvalidInput):
        services.add_weekly_hours(
            actor=owner,
            practitioner=clinic.practitioner,
            weekdays=[TUESDAY],
            spec=HoursSpec(start_time=time(9), end_time=time(10)),
        )

    assert callbacks == []


def test_direct_model_writes_still_refresh_the_table(clinic, django_capture_on_commit_callbacks):
    """The admin has no service to call: the signal receivers remain for it."""
    refresh_next_slots(practitioner_ids=[clinic.practitioner.pk])

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=0).get().delete()

    assert first_slot(clinic) == at(clinic, 8)  # Tuesday 08:00


# --- Absences -----------------------------------------------------------------------------------


def test_an_absence_closes_its_range_and_deleting_it_reopens_it(
    clinic, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        absence = services.add_absence(
            actor=owner,
            practitioner=clinic.practitioner,
            start=at(clinic, 8),
            end=at(clinic, 17),
            label="  Congrès  ",
        )
    assert absence.label == "Congrès"
    assert tuesday_slots(clinic) == [at(clinic, 17), at(clinic, 17, 30)]

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_absence(
            actor=owner, practitioner=clinic.practitioner, absence_id=absence.pk
        )
    assert len(tuesday_slots(clinic)) == 20


def test_an_absence_over_a_booked_appointment_is_refused(clinic, owner):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    with pytest.raises(InvalidInput, match="1 appointment"):
        services.add_absence(
            actor=owner, practitioner=clinic.practitioner, start=at(clinic, 8), end=at(clinic, 12)
        )

    assert not Absence.objects.exists()


def test_an_absence_that_is_already_over_is_refused(clinic, owner, frozen_now):
    with pytest.raises(InvalidInput, match="already over"):
        services.add_absence(
            actor=owner,
            practitioner=clinic.practitioner,
            start=frozen_now - timedelta(days=2),
            end=frozen_now - timedelta(days=1),
        )


# --- Visit reasons ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ReasonSpec(label="Acte", duration_minutes=4), "duration_minutes"),
        (ReasonSpec(label="Acte", duration_minutes=481), "duration_minutes"),
        (ReasonSpec(label="   ", duration_minutes=30), "label"),
        (ReasonSpec(label="Acte", duration_minutes=30, patient_kind="vip"), "patient_kind"),
    ],
)
def test_a_reason_out_of_bounds_is_refused(clinic, owner, spec, field):
    with pytest.raises(InvalidInput) as refused:
        services.add_visit_reason(actor=owner, practitioner=clinic.practitioner, spec=spec)

    assert refused.value.field == field
    assert VisitReason.objects.filter(practitioner=clinic.practitioner).count() == 1


def test_a_new_reason_is_offered_with_its_own_duration(clinic, owner):
    reason = services.add_visit_reason(
        actor=owner,
        practitioner=clinic.practitioner,
        spec=ReasonSpec(label="Bilan", duration_minutes=120, position=2),
    )

    assert tuesday_slots(clinic, reason=reason)[:2] == [at(clinic, 8), at(clinic, 10)]


def test_a_deactivated_reason_leaves_online_booking_and_comes_back(
    clinic, owner, client, django_capture_on_commit_callbacks
):
    url = f"/api/v1/practitioners/{clinic.practitioner.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        services.set_visit_reason_active(
            actor=owner, practitioner=clinic.practitioner, reason_id=clinic.reason.pk, active=False
        )
    assert client.get(url).json()["reasons"] == []
    assert not NextSlots.objects.filter(reason=clinic.reason).exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.set_visit_reason_active(
            actor=owner, practitioner=clinic.practitioner, reason_id=clinic.reason.pk, active=True
        )
    assert [r["id"] for r in client.get(url).json()["reasons"]] == [clinic.reason.pk]
    assert NextSlots.objects.filter(reason=clinic.reason).exists()


def test_a_reason_with_appointments_cannot_be_deleted(clinic, owner):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=clinic.slot)

    with pytest.raises(InvalidInput, match="deactivate"):
        services.delete_visit_reason(
            actor=owner, practitioner=clinic.practitioner, reason_id=clinic.reason.pk
        )

    assert VisitReason.objects.filter(pk=clinic.reason.pk).exists()


def test_a_reason_some_hours_are_restricted_to_cannot_be_deleted(clinic, owner):
    WeeklyHours.objects.filter(practitioner=clinic.practitioner).first().reasons.add(clinic.reason)

    with pytest.raises(InvalidInput, match="restricted"):
        services.delete_visit_reason(
            actor=owner, practitioner=clinic.practitioner, reason_id=clinic.reason.pk
        )


def test_an_unused_reason_can_be_deleted(clinic, owner):
    services.delete_visit_reason(
        actor=owner, practitioner=clinic.practitioner, reason_id=clinic.reason.pk
    )

    assert not VisitReason.objects.filter(pk=clinic.reason.pk).exists()


# --- Booking rules ------------------------------------------------------------------------------


def rules_of(practitioner: Practitioner, **changes) -> BookingRules:
    values = {
        "minimum_notice_minutes": practitioner.minimum_notice_minutes,
        "booking_horizon_days": practitioner.booking_horizon_days,
        "cancellation_notice_hours": practitioner.cancellation_notice_hours,
        "reminders_enabled": practitioner.reminders_enabled,
        "reminder_hours": tuple(practitioner.reminder_hours),
        "online_booking_enabled": practitioner.online_booking_enabled,
        "accepts_new_patients": practitioner.accepts_new_patients,
        "no_show_limit": practitioner.no_show_limit,
    }
    return BookingRules(**(values | changes))


def test_the_practitioner_changes_the_booking_rules(clinic, owner):
    rules = rules_of(
        clinic.practitioner,
        minimum_notice_minutes=24 * 60,
        reminder_hours=(2, 48),
        no_show_limit=3,
        accepts_new_patients=False,
    )

    services.update_booking_rules(actor=owner, practitioner=clinic.practitioner, rules=rules)

    saved = Practitioner.objects.get(pk=clinic.practitioner.pk)
    assert saved.minimum_notice_minutes == 24 * 60
    assert saved.reminder_hours == [48, 2]
    assert (saved.no_show_limit, saved.accepts_new_patients) == (3, False)
    assert tuesday_slots(clinic)[0] == at(clinic, 8)  # not before Monday 08:00 + 24 h


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reminder_hours": (24, 24)}, "reminder_hours"),
        ({"reminder_hours": (1, 2, 3, 4)}, "reminder_hours"),
        ({"reminder_hours": (0,)}, "reminder_hours"),
        ({"reminder_hours": (24 * 8,)}, "reminder_hours"),
        ({"reminder_hours": (), "reminders_enabled": True}, "reminder_hours"),
        ({"booking_horizon_days": 0}, "booking_horizon_days"),
        ({"no_show_limit": 0}, "no_show_limit"),
    ],
)
def test_booking_rules_out_of_bounds_are_refused(clinic, owner, changes, field):
    with pytest.raises(InvalidInput) as refused:
        services.update_booking_rules(
            actor=owner,
            practitioner=clinic.practitioner,
            rules=rules_of(clinic.practitioner, **changes),
        )

    assert refused.value.field == field
    assert Practitioner.objects.get(pk=clinic.practitioner.pk).reminder_hours == [24, 2]


def test_reminders_off_may_keep_no_hours(clinic, owner):
    rules = rules_of(clinic.practitioner, reminders_enabled=False, reminder_hours=())

    services.update_booking_rules(actor=owner, practitioner=clinic.practitioner, rules=rules)

    assert Practitioner.objects.get(pk=clinic.practitioner.pk).reminder_hours == []


def test_online_booking_off_empties_the_next_slots(
    clinic, owner, django_capture_on_commit_callbacks
):
    refresh_next_slots(practitioner_ids=[clinic.practitioner.pk])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.update_booking_rules(
            actor=owner,
            practitioner=clinic.practitioner,
            rules=rules_of(clinic.practitioner, online_booking_enabled=False),
        )

    assert len(callbacks) == 1
    assert not NextSlots.objects.filter(practitioner=clinic.practitioner).exists()
