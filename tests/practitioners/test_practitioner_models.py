"""Invariants of the practitioner models, held both by validation and by the database."""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from practitioners.models import Practitioner, StaffAccess, WeeklyHours
from tests.factories import (
    AbsenceFactory,
    PracticeFactory,
    PractitionerFactory,
    StaffAccessFactory,
    WeeklyHoursFactory,
)


@pytest.mark.parametrize("rpps", ["10003456789", "00000000000"])
def test_an_rpps_of_eleven_digits_is_valid(db, rpps):
    practitioner = PractitionerFactory.build(
        rpps=rpps, specialty=PractitionerFactory().specialty, practice=PracticeFactory(), user=None
    )

    practitioner.full_clean()


@pytest.mark.parametrize("rpps", ["1000345678", "123456789012", "1000345678a", "", "1000 345678"])
def test_an_rpps_that_is_not_eleven_digits_fails_validation(db, rpps):
    practitioner = PractitionerFactory.build(
        rpps=rpps, specialty=PractitionerFactory().specialty, practice=PracticeFactory(), user=None
    )

    with pytest.raises(ValidationError) as invalid:
        practitioner.full_clean()

    assert "rpps" in invalid.value.message_dict


@pytest.mark.parametrize("rpps", ["1000345678", "1000345678a", "ABCDEFGHIJK", "1000 345678"])
def test_the_database_refuses_an_rpps_that_is_not_eleven_digits(db, rpps):
    with pytest.raises(IntegrityError), transaction.atomic():
        PractitionerFactory(rpps=rpps)

    assert not Practitioner.objects.filter(rpps=rpps).exists()


def test_two_practitioners_cannot_share_an_rpps(db):
    PractitionerFactory(rpps="10003456789")

    with pytest.raises(IntegrityError), transaction.atomic():
        PractitionerFactory(rpps="10003456789")


@pytest.mark.parametrize(("start", "end"), [(time(12), time(9)), (time(9), time(9))])
def test_the_database_refuses_weekly_hours_that_do_not_start_before_they_end(db, start, end):
    with pytest.raises(IntegrityError), transaction.atomic():
        WeeklyHoursFactory(start_time=start, end_time=end)


def test_weekly_hours_that_end_before_they_start_fail_validation(db):
    hours = WeeklyHoursFactory.build(
        practitioner=PractitionerFactory(), start_time=time(12), end_time=time(9)
    )

    with pytest.raises(ValidationError):
        hours.full_clean()


def test_the_database_refuses_a_weekday_out_of_range(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        WeeklyHoursFactory(weekday=7)


def test_the_database_refuses_a_validity_that_ends_before_it_starts(db):
    today = timezone.localdate()

    with pytest.raises(IntegrityError), transaction.atomic():
        WeeklyHoursFactory(valid_from=today, valid_until=today - timedelta(days=1))


def test_weekly_hours_apply_only_on_their_weekday_within_their_validity(db):
    monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    hours = WeeklyHoursFactory(
        weekday=WeeklyHours.Weekday.MONDAY,
        valid_from=monday,
        valid_until=monday + timedelta(days=7),
    )

    assert hours.applies_on(monday)
    assert hours.applies_on(monday + timedelta(days=7))
    assert not hours.applies_on(monday + timedelta(days=1))
    assert not hours.applies_on(monday + timedelta(days=14))
    assert not hours.applies_on(monday - timedelta(days=7))


def test_the_database_refuses_an_absence_that_ends_before_it_starts(db):
    now = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        AbsenceFactory(start=now, end=now - timedelta(hours=1))


def test_a_practice_time_zone_must_be_an_iana_zone(db):
    practice = PracticeFactory.build(timezone="Mars/Olympus_Mons")

    with pytest.raises(ValidationError) as invalid:
        practice.full_clean()

    assert "timezone" in invalid.value.message_dict


def test_a_secretary_is_granted_an_agenda_once(db):
    access = StaffAccessFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        StaffAccess.objects.create(practitioner=access.practitioner, user=access.user)
