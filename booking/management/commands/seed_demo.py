"""Fake French demo data and demo accounts, for `make run` and the benchmarks.

Idempotent: practitioners are keyed by their deterministic slug, demo accounts by the blind index
of their demo email; a second run creates nothing, a run with larger numbers adds only the rest.
Appointments are written directly on the availability grid (no engine call, no audit event: the
data is fake and seeding is not an access to anyone's appointments).
"""

import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import crypto
from accounts.models import Role, User
from booking.availability import Interval, OpeningRule
from booking.demo_data import (
    CANCELLATION_REASONS,
    SPECIALTIES,
    FillRate,
    GridSlot,
    PractitionerPlan,
    demo_rng,
    grid_slots,
    patient_plan,
    practice_keys,
    practice_plan,
    practitioner_plan,
)
from booking.models import Appointment
from booking.next_slots import refresh_in_batches
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

BATCH = 2000
APPOINTMENT_BATCH = 5000
PAST_DAYS = 14
FILL = {"past": 0.35, "future": 0.5}
DEMO_PATIENT_LOGINS = 5
SECRETARY_PRACTITIONERS = 3
TZ = ZoneInfo("Europe/Paris")
T = TypeVar("T")
Status = Appointment.Status
CancelledBy = Appointment.CancelledBy


def chunks(items: Sequence[T], size: int = 5000) -> Iterator[Sequence[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


@dataclass(frozen=True)
class NewPractitioner:
    """What the appointment generator needs about a practitioner just created."""

    number: int
    pk: int
    user_id: int | None
    pediatric: bool
    rules: list[OpeningRule]
    durations: dict[int, timedelta]
    phone_only: frozenset[int]
    absences: list[Interval]


@dataclass(frozen=True)
class PatientPool:
    patients: list[tuple[int, int | None]]  # patient id, user id
    relatives: dict[int, list[int]]  # patient id -> relative ids
    parents: list[tuple[int, int | None]]  # patients with children


def existing_users(emails: Iterable[str]) -> dict[str, int]:
    """Demo email -> user id, looked up through the blind index."""
    by_index = {
        index: email for email in emails for index in crypto.blind_indexes(email, kind="email")
    }
    found: dict[str, int] = {}
    for chunk in chunks(list(by_index)):
        rows = User.objects.filter(email_index__in=chunk).values_list("email_index", "pk")
        found.update((by_index[index], pk) for index, pk in rows)
    return found


def create_users(emails: Sequence[str], *, role: str, password: str) -> dict[str, int]:
    users = [User(email=email, role=role, password=password) for email in emails]
    User.objects.bulk_create(users, batch_size=BATCH)  # pre_save fills the blind index
    return {user.email: user.pk for user in users}


def ensure_account(email: str, *, role: str, password: str, **extra: Any) -> int:
    """Create the account unless its email is taken; returns how many were created (0 or 1)."""
    if User.objects.filter_by_email(email).exists():
        return 0
    User.objects.create(email=email, role=role, password=password, **extra)
    return 1


def ensure_specialties() -> dict[str, int]:
    ids = {}
    for name, slug, _weight, _reasons in SPECIALTIES:
        specialty = Specialty.objects.filter(Q(slug=slug) | Q(name=name)).first()
        ids[slug] = (specialty or Specialty.objects.create(name=name, slug=slug)).pk
    return ids


def missing_practitioner_plans(
    count: int, today: date
) -> tuple[list[PractitionerPlan], dict[int, int]]:
    """Plans of practitioners 1..count not yet in the database, and known practice ids."""
    keys = practice_keys(count)
    plans = [
        practitioner_plan(n, practice_key=keys[n - 1], today=today, tz=TZ)
        for n in range(1, count + 1)
    ]
    existing = dict(
        Practitioner.objects.filter(slug__in=[plan.slug for plan in plans]).values_list(
            "slug", "practice_id"
        )
    )
    practice_ids = {
        plan.practice_key: existing[plan.slug] for plan in plans if plan.slug in existing
    }
    return [plan for plan in plans if plan.slug not in existing], practice_ids


def create_practitioners(
    plans: list[PractitionerPlan], practice_ids: dict[int, int], *, password: str
) -> tuple[list[tuple[PractitionerPlan, Practitioner]], int]:
    new_practices = {
        key: Practice(**asdict(practice_plan(key)))
        for key in sorted({plan.practice_key for plan in plans} - practice_ids.keys())
    }
    Practice.objects.bulk_create(new_practices.values(), batch_size=BATCH)
    practice_ids.update((key, practice.pk) for key, practice in new_practices.items())
    emails = [plan.email for plan in plans]
    existing = existing_users(emails)
    # An account already linked to another practitioner stays his; this one then has none.
    linked = set(
        Practitioner.objects.filter(user_id__in=existing.values()).values_list("user_id", flat=True)
    )
    user_ids = {email: pk for email, pk in existing.items() if pk not in linked}
    fresh = [email for email in emails if email not in existing]
    user_ids.update(create_users(fresh, role=Role.PRACTITIONER, password=password))
    specialty_ids = ensure_specialties()
    practitioners = [
        Practitioner(
            user_id=user_ids.get(plan.email),
            first_name=plan.first_name,
            last_name=plan.last_name,
            slug=plan.slug,
            specialty_id=specialty_ids[plan.specialty_slug],
            practice_id=practice_ids[plan.practice_key],
            rpps=plan.rpps,
            **plan.settings,
        )
        for plan in plans
    ]
    Practitioner.objects.bulk_create(practitioners, batch_size=BATCH)
    return list(zip(plans, practitioners, strict=True)), len(new_practices)


def create_schedules(created: list[tuple[PractitionerPlan, Practitioner]]) -> list[NewPractitioner]:
    """Reasons, weekly hours (with their reason restrictions) and absences of new practitioners."""
    reasons = {
        (practitioner.pk, reason.position): VisitReason(practitioner=practitioner, **asdict(reason))
        for plan, practitioner in created
        for reason in plan.reasons
    }
    VisitReason.objects.bulk_create(reasons.values(), batch_size=BATCH)
    hours = [
        (practitioner.pk, row, WeeklyHours(
            practitioner=practitioner, weekday=row.weekday, start_time=row.start,
            end_time=row.end, valid_from=row.valid_from, valid_until=row.valid_until,
        ))
        for plan, practitioner in created
        for row in plan.hours
    ]  # fmt: skip
    WeeklyHours.objects.bulk_create([model for _pk, _row, model in hours], batch_size=BATCH)
    WeeklyHours.reasons.through.objects.bulk_create(
        [
            WeeklyHours.reasons.through(weeklyhours_id=model.pk, visitreason_id=reasons[pk, pos].pk)
            for pk, row, model in hours
            for pos in row.reason_positions
        ],
        batch_size=BATCH,
    )
    Absence.objects.bulk_create(
        [
            Absence(practitioner=practitioner, start=start, end=end, label=label)
            for plan, practitioner in created
            for start, end, label in plan.absences
        ],
        batch_size=BATCH,
    )
    return [_new_practitioner(plan, practitioner, reasons) for plan, practitioner in created]


def _new_practitioner(
    plan: PractitionerPlan, practitioner: Practitioner, reasons: dict[tuple[int, int], VisitReason]
) -> NewPractitioner:
    own = {reason.position: reasons[practitioner.pk, reason.position] for reason in plan.reasons}
    return NewPractitioner(
        number=plan.number,
        pk=practitioner.pk,
        user_id=practitioner.user_id,
        pediatric=plan.specialty_slug == "pediatre",
        rules=[
            OpeningRule(
                weekday=row.weekday,
                start=row.start,
                end=row.end,
                valid_from=row.valid_from,
                valid_until=row.valid_until,
                reason_ids=frozenset(own[pos].pk for pos in row.reason_positions),
            )
            for row in plan.hours
        ],
        durations={reason.pk: reason.duration for reason in own.values()},
        phone_only=frozenset(reason.pk for reason in own.values() if not reason.online_bookable),
        absences=[Interval(start, end) for start, end, _label in plan.absences],
    )


def seed_patients(count: int, *, password: str) -> tuple[int, int]:
    """Patients 1..count with accounts and relatives; returns (patients, relatives) created."""
    emails = {n: f"patient{n}@demo.test" for n in range(1, count + 1)}
    existing = existing_users(emails.values())
    plans = [patient_plan(n) for n, email in emails.items() if email not in existing]
    user_ids = create_users([p.email for p in plans], role=Role.PATIENT, password=password)
    patients = [
        Patient(
            user_id=user_ids[plan.email],
            first_name=plan.first_name,
            last_name=plan.last_name,
            birth_date=plan.birth_date.isoformat(),  # EncryptedDateField stores the ISO form
            phone=plan.phone,
            email=plan.email,
        )
        for plan in plans
    ]
    Patient.objects.bulk_create(patients, batch_size=BATCH)
    relatives = [
        Relative(
            managed_by=patient,
            first_name=first_name,
            last_name=plan.last_name,
            birth_date=born.isoformat(),
            relationship=kind,
        )
        for plan, patient in zip(plans, patients, strict=True)
        for first_name, born, kind in plan.relatives
    ]
    Relative.objects.bulk_create(relatives, batch_size=BATCH)
    return len(patients), len(relatives)


def patient_pool(count: int) -> PatientPool:
    user_ids = list(existing_users(f"patient{n}@demo.test" for n in range(1, count + 1)).values())
    patients: list[tuple[int, int | None]] = []
    relatives: dict[int, list[int]] = defaultdict(list)
    for chunk in chunks(user_ids):
        patients += Patient.objects.filter(user_id__in=chunk).values_list("pk", "user_id")
    for chunk in chunks([pk for pk, _user in patients]):
        for pk, managed_by in Relative.objects.filter(
            managed_by_id__in=chunk, relationship=Relative.Relationship.CHILD
        ).values_list("pk", "managed_by_id"):
            relatives[managed_by].append(pk)
    patients.sort()
    parents = [patient for patient in patients if patient[0] in relatives]
    return PatientPool(patients, dict(relatives), parents)


def appointment_for(
    slot: GridSlot, who: NewPractitioner, pool: PatientPool, rng: random.Random, now: datetime
) -> Appointment:
    parents = who.pediatric and bool(pool.parents) and rng.random() < 0.8
    patient_id, user_id = rng.choice(pool.parents if parents else pool.patients)
    children = pool.relatives.get(patient_id, [])
    relative_id = rng.choice(children) if children and (parents or rng.random() < 0.1) else None
    by_phone = slot.reason_id in who.phone_only or rng.random() < 0.25
    channel = Appointment.Channel.PHONE if by_phone else Appointment.Channel.WEB
    appointment = Appointment(
        practitioner_id=who.pk,
        patient_id=patient_id,
        relative_id=relative_id,
        reason_id=slot.reason_id,
        start=slot.start,
        end=slot.end,
        channel=channel,
        booked_by_id=who.user_id if by_phone else user_id,
    )
    appointment.status = _status(slot, rng, now)
    if appointment.status == Status.CANCELLED:
        by_patient = rng.random() < 0.7
        appointment.cancelled_by = CancelledBy.PATIENT if by_patient else CancelledBy.PRACTICE
        appointment.cancelled_by_user_id = user_id if by_patient else who.user_id
        appointment.cancelled_at = min(now, slot.start - timedelta(hours=rng.randint(2, 96)))
        appointment.cancellation_reason = rng.choice(CANCELLATION_REASONS)
    return appointment


def _status(slot: GridSlot, rng: random.Random, now: datetime) -> str:
    draw = rng.random()
    if slot.start >= now:
        return Status.CANCELLED if draw < 0.08 else Status.BOOKED
    if slot.end > now:
        return Status.ARRIVED
    return Status.CANCELLED if draw < 0.06 else Status.NO_SHOW if draw < 0.12 else Status.DONE


def seed_appointments(
    practitioners: list[NewPractitioner], pool: PatientPool, *, now: datetime, days: int
) -> int:
    if not pool.patients:
        return 0
    today = now.astimezone(TZ).date()
    fill = FillRate(now=now, **FILL)
    batch: list[Appointment] = []
    total = 0
    for who in practitioners:
        rng = demo_rng("appointments", who.number)
        for slot in grid_slots(
            rules=who.rules,
            durations=who.durations,
            absences=who.absences,
            tz=TZ,
            first_day=today - timedelta(days=min(days, PAST_DAYS)),
            last_day=today + timedelta(days=days - 1),
            fill=fill,
            rng=rng,
        ):
            batch.append(appointment_for(slot, who, pool, rng, now))
            if len(batch) >= APPOINTMENT_BATCH:
                total += len(Appointment.objects.bulk_create(batch))
                batch = []
    return total + len(Appointment.objects.bulk_create(batch))


def grant_secretary_access(*, practitioners: int, today: date) -> int:
    """secretary1 manages the agendas of practitioners 1-3; returns the grants created."""
    secretary = User.objects.filter_by_email("secretary1@demo.test").get()
    numbers = range(1, min(practitioners, SECRETARY_PRACTITIONERS) + 1)
    slugs = [practitioner_plan(n, practice_key=0, today=today, tz=TZ).slug for n in numbers]
    granted = StaffAccess.objects.filter(user=secretary).values_list("practitioner_id", flat=True)
    chosen = Practitioner.objects.filter(slug__in=slugs)
    access = [
        StaffAccess(practitioner_id=pk, user=secretary, level=StaffAccess.Level.MANAGE)
        for pk in chosen.exclude(pk__in=list(granted)).values_list("pk", flat=True)
    ]
    StaffAccess.objects.bulk_create(access)
    PracticeMember.objects.bulk_create(
        [
            PracticeMember(practice_id=practice_id, user=secretary)
            for practice_id in set(chosen.values_list("practice_id", flat=True))
        ],
        ignore_conflicts=True,
    )
    return len(access)


class Command(BaseCommand):
    help = "Create fake French demo data and demo accounts (idempotent). Development only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--practitioners", type=int, default=40)
        parser.add_argument("--patients", type=int, default=1000)
        parser.add_argument("--days", type=int, default=30, help="days of appointments ahead")
        parser.add_argument("--password", default="demo-creneau")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo writes fake data: refused with DEBUG off (use --force).")
        for name in ("practitioners", "patients", "days"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        self.verbosity = options["verbosity"]
        self.started = started = time.monotonic()
        # One hash for every demo account: hashing each would take hours at 50,000 patients.
        password = make_password(options["password"])
        with transaction.atomic():
            counts = self.seed(options, password=password)
        elapsed = time.monotonic() - started
        created = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
        self.stdout.write(
            f"seed_demo: created {created or 'nothing (already seeded)'} in {elapsed:.1f} s."
        )
        self.print_logins(options)

    def seed(self, options: dict[str, Any], *, password: str) -> dict[str, int]:
        now = timezone.now()
        today = now.astimezone(TZ).date()
        before = Specialty.objects.count()
        ensure_specialties()
        counts = {"specialties": Specialty.objects.count() - before}
        counts["patients"], counts["relatives"] = seed_patients(
            options["patients"], password=password
        )
        self.progress("patients", counts)
        plans, practice_ids = missing_practitioner_plans(options["practitioners"], today)
        created, counts["practices"] = create_practitioners(plans, practice_ids, password=password)
        counts["practitioners"] = len(created)
        new_practitioners = create_schedules(created)
        self.progress("practitioners", counts)
        counts["appointments"] = seed_appointments(
            new_practitioners, patient_pool(options["patients"]), now=now, days=options["days"]
        )
        self.progress("appointments", counts)
        counts["next-slot rows"] = refresh_in_batches(
            practitioner_ids=[p.pk for p in new_practitioners]
        )
        counts["staff accounts"] = ensure_account(
            "admin@demo.test", role=Role.ADMIN, password=password, is_staff=True, is_superuser=True
        ) + ensure_account("secretary1@demo.test", role=Role.SECRETARY, password=password)
        counts["staff access grants"] = grant_secretary_access(
            practitioners=options["practitioners"], today=today
        )
        return counts

    def progress(self, stage: str, counts: dict[str, int]) -> None:
        if self.verbosity >= 2:
            elapsed = time.monotonic() - self.started
            self.stdout.write(f"  {elapsed:6.1f} s  {stage} done: {counts}")

    def print_logins(self, options: dict[str, Any]) -> None:
        password = options["password"]
        last_patient = min(options["patients"], DEMO_PATIENT_LOGINS)
        last_secretary = min(options["practitioners"], SECRETARY_PRACTITIONERS)
        lines = [
            f"Demo logins, password {password!r}:",
            f"  patient       patient1@demo.test ... patient{last_patient}@demo.test",
            "  practitioner  practitioner1@demo.test ... "
            f"practitioner{options['practitioners']}@demo.test",
            f"  secretary     secretary1@demo.test (agendas of practitioners 1-{last_secretary})",
            "  admin         admin@demo.test (/admin/, /audit/)",
            "  Staff accounts (practitioners, secretary, admin) set up an authenticator app "
            "(TOTP) at their first login.",
        ]
        admin = User.objects.filter_by_email("admin@demo.test").only("password").first()
        if admin is not None and not check_password(password, admin.password):
            lines.append("  (accounts from an earlier run keep the password they were given)")
        self.stdout.write("\n".join(lines))
