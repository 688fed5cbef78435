"""Factories with fake data only (Faker, French locale): no real person in any test."""

from datetime import time, timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Role, User
from audit.actors import Actor
from audit.models import ActorKind, Channel
from booking.models import Appointment, WaitlistEntry, WaitlistOffer
from patients.models import Patient, Relative
from practitioners.models import (
    Absence,
    Practice,
    PracticeMember,
    Practitioner,
    Specialty,
    StaffAccess,
    VisitReason,
    WeeklyHours,
)

factory.Faker._DEFAULT_LOCALE = "fr_FR"
PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    role = Role.PATIENT
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SpecialtyFactory(DjangoModelFactory):
    class Meta:
        model = Specialty
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Specialty {n}")
    slug = factory.Sequence(lambda n: f"specialty-{n}")


class PracticeFactory(DjangoModelFactory):
    class Meta:
        model = Practice

    name = factory.Faker("company")
    address = factory.Faker("street_address")
    postcode = factory.Faker("postcode")
    city = "Lyon"
    timezone = "Europe/Paris"


class PractitionerFactory(DjangoModelFactory):
    class Meta:
        model = Practitioner

    user = factory.SubFactory(UserFactory, role=Role.PRACTITIONER)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    slug = factory.Sequence(lambda n: f"dr-test-{n}")
    specialty = factory.SubFactory(SpecialtyFactory)
    practice = factory.SubFactory(PracticeFactory)
    rpps = factory.Sequence(lambda n: f"{10000000000 + n:011d}")
    minimum_notice_minutes = 0
    booking_horizon_days = 60
    cancellation_notice_hours = 24


class VisitReasonFactory(DjangoModelFactory):
    class Meta:
        model = VisitReason

    practitioner = factory.SubFactory(PractitionerFactory)
    label = "Consultation"
    duration_minutes = 30


class WeeklyHoursFactory(DjangoModelFactory):
    class Meta:
        model = WeeklyHours

    practitioner = factory.SubFactory(PractitionerFactory)
    weekday = 0
    start_time = time(9, 0)
    end_time = time(12, 0)


class AbsenceFactory(DjangoModelFactory):
    class Meta:
        model = Absence

    practitioner = factory.SubFactory(PractitionerFactory)
    start = factory.LazyFunction(timezone.now)
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=2))


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    user = factory.SubFactory(UserFactory, role=Role.PATIENT)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    birth_date = factory.Faker("date_of_birth", minimum_age=18, maximum_age=90)
    phone = factory.Sequence(lambda n: f"06{n:08d}")
    email = factory.LazyAttribute(lambda o: o.user.email if o.user else "")


class RelativeFactory(DjangoModelFactory):
    class Meta:
        model = Relative

    managed_by = factory.SubFactory(PatientFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    birth_date = factory.Faker("date_of_birth", minimum_age=1, maximum_age=17)


class StaffAccessFactory(DjangoModelFactory):
    class Meta:
        model = StaffAccess

    practitioner = factory.SubFactory(PractitionerFactory)
    user = factory.SubFactory(UserFactory, role=Role.SECRETARY)
    level = StaffAccess.Level.MANAGE


class AppointmentFactory(DjangoModelFactory):
    """An appointment written directly (no availability check): for fixtures, not for testing
    the booking service."""

    class Meta:
        model = Appointment

    practitioner = factory.SubFactory(PractitionerFactory)
    patient = factory.SubFactory(PatientFactory)
    reason = factory.SubFactory(
        VisitReasonFactory, practitioner=factory.SelfAttribute("..practitioner")
    )
    start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=o.reason.duration_minutes))
    status = Appointment.Status.BOOKED
    channel = Appointment.Channel.WEB


def make_actor(user: User | None = None, *, channel: str = Channel.API) -> Actor:
    """The actor a request by `user` (None: anonymous) would carry on `channel`."""
    kind = ActorKind.USER if user is not None else ActorKind.ANONYMOUS
    return Actor(kind=kind, channel=channel, user=user, request_id="test-request-0001")


def secretary_of(practitioner: Practitioner, *, level: str = StaffAccess.Level.MANAGE) -> User:
    """A secretary of the practitioner's practice, granted `level` on their agenda."""
    user = StaffAccessFactory(practitioner=practitioner, level=level).user
    PracticeMember.objects.create(practice=practitioner.practice, user=user)
    return user


class WaitlistEntryFactory(DjangoModelFactory):
    """A waiting-list entry for a booked appointment three days ahead."""

    class Meta:
        model = WaitlistEntry

    appointment = factory.SubFactory(AppointmentFactory)
    active = True


class WaitlistOfferFactory(DjangoModelFactory):
    """An open offer of the slot an hour before the entry's appointment, for 30 minutes."""

    class Meta:
        model = WaitlistOffer

    entry = factory.SubFactory(WaitlistEntryFactory)
    start = factory.LazyAttribute(lambda o: o.entry.appointment.start - timedelta(hours=1))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))
    status = WaitlistOffer.Status.OFFERED


# --- Agenda -----------------------------------------------------------------------------------


def open_every_day(
    practitioner: Practitioner, *, start: time = time(8), end: time = time(18)
) -> None:
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=start, end_time=end
        )


def colleague_of(practitioner: Practitioner) -> Practitioner:
    """Another practitioner of the same practice, open every day 08:00-18:00 with one reason."""
    colleague = PractitionerFactory(practice=practitioner.practice)
    VisitReasonFactory(practitioner=colleague)
    open_every_day(colleague)
    return colleague


def known_patient_of(practitioner: Practitioner, **fields: object) -> Patient:
    """A patient the practitioner saw a month ago, who also brought a child once: one of the
    practitioner's patients, found by their practice."""
    patient = PatientFactory(**fields)
    child = RelativeFactory(managed_by=patient)
    reason = practitioner.reasons.first() or VisitReasonFactory(practitioner=practitioner)
    month_ago = timezone.now() - timedelta(days=30)
    for offset, relative in enumerate((None, child)):
        AppointmentFactory(
            practitioner=practitioner,
            reason=reason,
            patient=patient,
            relative=relative,
            start=month_ago + timedelta(hours=offset),
            status=Appointment.Status.DONE,
        )
    return patient
