"""seed_demo: French demo data on the availability grid, demo logins, idempotence, DEBUG guard."""

from collections import defaultdict
from datetime import timedelta
from io import StringIO
from itertools import pairwise

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Role, User
from booking.demo_data import luhn_digit
from booking.models import ACTIVE_STATUSES, Appointment
from booking.slots import BookingWindow, compute_slots, load_schedules
from patients.models import Patient, Relative
from practitioners.models import (
    Absence,
    Practice,
    Practitioner,
    Specialty,
    StaffAccess,
    VisitReason,
    WeeklyHours,
)

SMALL = {"practitioners": 10, "patients": 30, "days": 7}
PASSWORD = "demo-creneau"
MODELS = [
    User,
    Specialty,
    Practice,
    Practitioner,
    VisitReason,
    WeeklyHours,
    Absence,
    StaffAccess,
    Patient,
    Relative,
    Appointment,
]


def seed(**options: object) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{**SMALL, **options})
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


@pytest.fixture
def seeded(db, debug):
    started = timezone.now()
    output = seed()
    return started, output


def test_creates_the_requested_numbers_in_every_specialty_and_city(seeded):
    assert Practitioner.objects.count() == 10
    assert Patient.objects.count() == 30
    assert set(Specialty.objects.values_list("slug", flat=True)) >= {
        "medecin-generaliste",
        "dentiste",
        "pediatre",
        "dermatologue",
        "ophtalmologue",
        "gynecologue",
        "kinesitherapeute",
        "psychiatre",
    }
    assert Practitioner.objects.values("specialty").distinct().count() == Specialty.objects.count()
    cities = set(Practice.objects.values_list("city", flat=True))
    assert {"Paris", "Lyon", "Marseille", "Toulouse", "Bordeaux"} <= cities
    assert all(len(p.postcode) == 5 and p.address for p in Practice.objects.all())


def test_practitioners_have_valid_rpps_reasons_hours_and_absences(seeded):
    for practitioner in Practitioner.objects.prefetch_related("reasons"):
        rpps = practitioner.rpps
        assert len(rpps) == 11
        assert rpps.isdigit()
        assert luhn_digit(rpps[:10]) == rpps[10]
        assert 2 <= len(practitioner.reasons.all()) <= 4
    reasons = VisitReason.objects.all()
    assert reasons.filter(online_bookable=False).exists()
    assert reasons.filter(patient_kind=VisitReason.PatientKind.NEW).exists()
    assert reasons.filter(patient_kind=VisitReason.PatientKind.EXISTING).exists()
    hours = WeeklyHours.objects.all()
    assert hours.filter(start_time__lt="12:00").exists()
    assert hours.filter(end_time__gt="17:00").exists()
    assert hours.filter(weekday=WeeklyHours.Weekday.SATURDAY).exists()
    assert hours.filter(reasons__isnull=False).exists()
    assert Absence.objects.exists()
    assert Relative.objects.exists()


def test_appointments_span_past_and_future_statuses(seeded):
    started, _output = seeded
    appointments = Appointment.objects.all()
    assert appointments.filter(start__lt=started, status=Appointment.Status.DONE).exists()
    assert appointments.filter(start__gt=started, status=Appointment.Status.BOOKED).exists()
    assert appointments.filter(status=Appointment.Status.CANCELLED).exists()
    assert not appointments.filter(start__gt=started + timedelta(days=8)).exists()
    assert all(a.end - a.start == a.reason.duration for a in appointments.select_related("reason"))


def test_active_appointments_of_a_practitioner_never_overlap(seeded):
    by_practitioner = defaultdict(list)
    for practitioner_id, start, end in Appointment.objects.filter(
        status__in=ACTIVE_STATUSES
    ).values_list("practitioner_id", "start", "end"):
        by_practitioner[practitioner_id].append((start, end))
    assert by_practitioner
    for intervals in by_practitioner.values():
        intervals.sort()
        assert all(first[1] <= second[0] for first, second in pairwise(intervals))


def test_every_future_booking_is_a_slot_the_engine_offers(seeded):
    started, _output = seeded
    practitioners = list(Practitioner.objects.select_related("practice"))
    first_day, last_day = started.date() - timedelta(days=1), started.date() + timedelta(days=8)
    schedules = load_schedules(practitioners, first_day, last_day)
    window = BookingWindow(earliest=started, latest_day=None)  # the staff window at seeding time
    booked = Appointment.objects.filter(status=Appointment.Status.BOOKED, start__gte=started)
    checked = 0
    for practitioner in practitioners:
        for reason in practitioner.reasons.all():
            offered = set(
                compute_slots(
                    practitioner=practitioner,
                    reason=reason,
                    schedule=schedules[practitioner.pk],
                    first_day=first_day,
                    last_day=last_day,
                    window=window,
                    include_appointments=False,
                )
            )
            starts = booked.filter(reason=reason).values_list("start", flat=True)
            assert set(starts) <= offered, (practitioner.slug, reason.label)
            checked += len(starts)
    assert checked > 50


def test_demo_logins_authenticate_with_the_printed_password(seeded):
    _started, output = seeded
    assert f"'{PASSWORD}'" in output
    roles = {
        **{f"patient{n}@demo.test": Role.PATIENT for n in range(1, 6)},
        "practitioner1@demo.test": Role.PRACTITIONER,
        "practitioner10@demo.test": Role.PRACTITIONER,
        "secretary1@demo.test": Role.SECRETARY,
        "admin@demo.test": Role.ADMIN,
    }
    for login in ("patient1@", "patient5@", "practitioner1@", "secretary1@", "admin@"):
        assert f"{login}demo.test" in output
    for email, role in roles.items():
        user = authenticate(email=email, password=PASSWORD)
        assert user is not None, email
        assert user.role == role
    assert User.objects.filter_by_email("admin@demo.test").get().is_superuser
    patient = User.objects.filter_by_email("patient1@demo.test").get().patient
    assert patient.relatives.count() == 2
    assert patient.appointments.exists()


def test_secretary_manages_the_first_three_agendas(seeded):
    secretary = User.objects.filter_by_email("secretary1@demo.test").get()
    access = StaffAccess.objects.filter(user=secretary)
    assert access.count() == 3
    assert set(access.values_list("level", flat=True)) == {StaffAccess.Level.MANAGE}
    assert set(access.values_list("practitioner__user__role", flat=True)) == {Role.PRACTITIONER}
    numbers = set(range(1, 4))
    emails = {f"practitioner{n}@demo.test" for n in numbers}
    owners = {p.practitioner.user.email for p in access.select_related("practitioner__user")}
    assert owners == emails


def test_demo_login_through_the_login_page(seeded, client):
    response = client.post(
        "/accounts/login/", {"username": "patient1@demo.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.session.get("_auth_user_id")


def test_output_names_no_patient(seeded):
    _started, output = seeded
    for patient in Patient.objects.all():
        for secret in (patient.first_name, patient.last_name, patient.phone):
            assert f" {secret} " not in f" {output} "
            assert secret not in output.replace("\n", " ").split(" ")


def test_second_run_creates_nothing(seeded):
    before = counts()
    output = seed()
    assert counts() == before
    assert "nothing" in output


def test_larger_run_adds_only_the_missing(seeded):
    first = dict(Practitioner.objects.values_list("slug", "pk"))
    seed(practitioners=12, patients=35)
    assert Practitioner.objects.count() == 12
    assert Patient.objects.count() == 35
    after = dict(Practitioner.objects.values_list("slug", "pk"))
    assert {slug: after.get(slug) for slug in first} == first
    assert StaffAccess.objects.count() == 3


@pytest.mark.django_db
def test_refuses_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Practitioner.objects.exists()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_force_seeds_even_when_debug_is_off(settings):
    settings.DEBUG = False
    seed(practitioners=2, patients=3, days=2, force=True)
    assert Practitioner.objects.count() == 2
    assert authenticate(email="patient3@demo.test", password=PASSWORD) is not None


def test_deterministic_names_for_the_same_numbers(db, debug, settings):
    seed(practitioners=3, patients=3, days=1)
    names = sorted(Practitioner.objects.values_list("slug", "first_name", "last_name"))
    Appointment.objects.all().delete()
    Practitioner.objects.all().delete()
    seed(practitioners=3, patients=3, days=1)
    assert sorted(Practitioner.objects.values_list("slug", "first_name", "last_name")) == names
