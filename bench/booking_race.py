"""Booking race on PostgreSQL: N client processes try to book the same hot slots.

Each client walks every hot slot in its own random order, each attempt for a fresh patient, first
through `booking.services.book_appointment` (availability check, insert under the exclusion
constraint, audit event), then, in the same run, as a bare psycopg transaction that inserts the row
and relies on the exclusion constraint alone. After each variant a self-join counts overlapping
active appointments (double bookings); the table is emptied between variants.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/booking_race.py [--json]

The benchmark creates (and drops) its own database next to the one DATABASE_URL names.
"""

import argparse
import base64
import json
import multiprocessing as mp
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.5
INSERT = """
    INSERT INTO booking_appointment (practitioner_id, patient_id, reason_id, start, "end",
        status, channel, cancelled_by, cancellation_reason, created_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, 'booked', 'phone', '', '', now(), now())
"""
DOUBLE_BOOKINGS = """
    SELECT count(*) FROM booking_appointment a JOIN booking_appointment b
      ON a.practitioner_id = b.practitioner_id AND a.id < b.id
     AND a.start < b."end" AND b.start < a."end"
     WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'
"""


@dataclass(frozen=True)
class Hotspot:
    """The seeded practitioner, its reason and the hot slots; one patient per attempt."""

    practitioner_id: int
    reason_id: int
    starts: list[datetime]
    duration: timedelta
    patients: list[list[int]]  # per client, one per slot


@dataclass
class Outcome:
    seconds: float = 0.0  # from the release of the clients to the last report
    fill_seconds: float | None = None  # until the last successful booking
    attempts: int = 0
    bookings: int = 0
    conflicts: int = 0
    deadlocks: int = 0  # counted among the conflicts: the other transaction got the slot
    errors: int = 0
    double_bookings: int = 0
    active_rows: int = 0
    last_booking_at: float = 0.0  # time.monotonic(), the same clock in every process on Linux

    @property
    def bookings_per_s(self) -> float:
        return self.bookings / self.seconds if self.seconds else 0.0

    @property
    def attempts_per_s(self) -> float:
        return self.attempts / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        del figures["last_booking_at"]
        return {
            **figures,
            "seconds": round(self.seconds, 3),
            "fill_seconds": None if self.fill_seconds is None else round(self.fill_seconds, 3),
            "bookings_per_s": round(self.bookings_per_s, 1),
            "attempts_per_s": round(self.attempts_per_s, 1),
        }


# --- Database lifecycle ----------------------------------------------------------------------


def database_url(base_url: str, name: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit("booking_race needs DATABASE_URL=postgres://... (PostgreSQL).")
    return urlunsplit(parts._replace(path=f"/{name}"))


def conninfo(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


def recreate_database(base_url: str, name: str, *, drop_only: bool = False) -> None:
    with psycopg.connect(conninfo(database_url(base_url, "postgres")), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def bench_environment(url: str) -> dict[str, str]:
    """The process environment of the benchmark: its database, no pool, and DEBUG off as in
    production (DEBUG logs every query, which would bill the service for the benchmark's
    bookkeeping). DEBUG off needs real secrets; throwaway ones do for a throwaway database."""

    def new_key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": new_key(),
        "BLIND_INDEX_KEY": new_key(),
        "AUDIT_CHAIN_KEY": new_key(),
        **os.environ,
        "DATABASE_URL": url,
        "DATABASE_POOL": "0",
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The benchmarks are one client hammering the API: the per-client rates would cut them.
        "API_ANONYMOUS_RATE": "",
        "API_USER_RATE": "",
    }


def migrate(url: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env or {**os.environ, "DATABASE_URL": url, "DATABASE_POOL": "0"},
        check=True,
    )


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Seeding --------------------------------------------------------------------------------


def seed(*, clients: int, slots: int) -> Hotspot:
    """One practitioner open 06:00-23:00 every day with a 10-minute reason, no minimum notice;
    the hot slots are the first `slots` free ones from tomorrow (two days hold 204)."""
    from django.utils import timezone

    from booking.slots import free_slots_for
    from patients.models import Patient
    from practitioners.models import (
        Practice,
        Practitioner,
        Specialty,
        VisitReason,
        WeeklyHours,
    )

    specialty = Specialty.objects.create(name="Médecin généraliste", slug="medecin-generaliste")
    practice = Practice.objects.create(
        name="Cabinet du banc d'essai", address="1 rue du Test", postcode="75001", city="Paris"
    )
    practitioner = Practitioner.objects.create(
        first_name="Camille",
        last_name="Essai",
        slug="camille-essai",
        specialty=specialty,
        practice=practice,
        rpps="10000000009",
        minimum_notice_minutes=0,
        booking_horizon_days=60,
    )
    reason = VisitReason.objects.create(
        practitioner=practitioner, label="Consultation", duration_minutes=10
    )
    WeeklyHours.objects.bulk_create(
        WeeklyHours(
            practitioner=practitioner,
            weekday=day,
            start_time=wall_time(6),
            end_time=wall_time(23),
        )
        for day in range(7)
    )
    tomorrow = timezone.now().astimezone(practice.tz).date() + timedelta(days=1)
    starts = free_slots_for(
        practitioner=practitioner, reason=reason, first_day=tomorrow, days=2, for_staff=True
    )[:slots]
    if len(starts) < slots:
        raise SystemExit(f"only {len(starts)} hot slots in two days; ask for fewer.")
    patients = Patient.objects.bulk_create(
        Patient(first_name="Client", last_name=f"{client}-{attempt}")
        for client in range(clients)
        for attempt in range(slots)
    )
    ids = [patient.pk for patient in patients]
    return Hotspot(
        practitioner_id=practitioner.pk,
        reason_id=reason.pk,
        starts=starts,
        duration=reason.duration,
        patients=[ids[client * slots : (client + 1) * slots] for client in range(clients)],
    )


# --- Clients --------------------------------------------------------------------------------


def attempt_all(
    index: int,
    hotspot: Hotspot,
    book: Callable[[int, datetime], object],
    *,
    conflict: tuple[type[Exception], ...],
    failure: tuple[type[Exception], ...],
    barrier: Any,
    time_limit: float,
) -> Outcome:
    """One client's walk through every hot slot, in its own order, until done or out of time."""
    order = list(range(len(hotspot.starts)))
    random.Random(index).shuffle(order)
    outcome = Outcome()
    barrier.wait()
    deadline = time.monotonic() + time_limit
    for patient_id, slot in zip(hotspot.patients[index], order, strict=True):
        if time.monotonic() > deadline:
            break
        outcome.attempts += 1
        try:
            book(patient_id, hotspot.starts[slot])
        except conflict as exc:
            outcome.conflicts += 1
            outcome.deadlocks += isinstance(exc, psycopg.errors.DeadlockDetected)
        except failure as exc:
            outcome.errors += 1
            print(f"client {index}: {exc!r}", file=sys.stderr)
        else:
            outcome.bookings += 1
            outcome.last_booking_at = time.monotonic()
    return outcome


def service_client(
    index: int, hotspot: Hotspot, time_limit: float, barrier: Any, results: Any
) -> None:
    from django.db import DatabaseError

    from audit.actors import system_actor
    from audit.models import Channel
    from booking.errors import DomainError, SlotUnavailable
    from booking.models import Appointment
    from booking.services import book_appointment
    from patients.models import Patient
    from practitioners.models import Practitioner, VisitReason

    practitioner = Practitioner.objects.select_related("practice").get(pk=hotspot.practitioner_id)
    reason = VisitReason.objects.get(pk=hotspot.reason_id)
    patients = Patient.objects.in_bulk(hotspot.patients[index])
    actor = system_actor("bench.booking_race", channel=Channel.COMMAND)

    def book(patient_id: int, start: datetime) -> object:
        return book_appointment(
            actor=actor,
            practitioner=practitioner,
            reason=reason,
            start=start,
            patient=patients[patient_id],
            channel=Appointment.Channel.PHONE,
        )

    results.put(
        attempt_all(
            index,
            hotspot,
            book,
            conflict=(SlotUnavailable,),
            failure=(DatabaseError, DomainError),
            barrier=barrier,
            time_limit=time_limit,
        )
    )


def raw_client(
    index: int, hotspot: Hotspot, url: str, time_limit: float, barrier: Any, results: Any
) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:

        def book(patient_id: int, start: datetime) -> object:
            row = (hotspot.practitioner_id, patient_id, hotspot.reason_id)
            with conn.transaction():
                return conn.execute(INSERT, (*row, start, start + hotspot.duration))

        results.put(
            attempt_all(
                index,
                hotspot,
                book,
                # Two overlapping inserts can each wait for the other in the constraint check;
                # PostgreSQL then fails one after deadlock_timeout, and the other one books.
                conflict=(psycopg.errors.ExclusionViolation, psycopg.errors.DeadlockDetected),
                failure=(psycopg.Error,),
                barrier=barrier,
                time_limit=time_limit,
            )
        )


def race(target: Any, args: tuple, *, clients: int) -> Outcome:
    """Start the clients, release them together, and time until the last one reports."""
    context = mp.get_context("fork")  # children inherit the configured Django, not a connection
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(index, *args, barrier, results))
        for index in range(clients)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    started = time.monotonic()
    outcomes = [results.get(timeout=600) for _process in processes]
    total = Outcome(seconds=time.monotonic() - started)
    for process in processes:
        process.join()
    for outcome in outcomes:
        total.attempts += outcome.attempts
        total.bookings += outcome.bookings
        total.conflicts += outcome.conflicts
        total.deadlocks += outcome.deadlocks
        total.errors += outcome.errors
    if total.bookings:
        total.fill_seconds = max(outcome.last_booking_at for outcome in outcomes) - started
    return total


def check_and_reset(url: str, outcome: Outcome) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        outcome.double_bookings = conn.execute(DOUBLE_BOOKINGS).fetchone()[0]
        outcome.active_rows = conn.execute(
            "SELECT count(*) FROM booking_appointment WHERE status <> 'cancelled'"
        ).fetchone()[0]
        conn.execute("TRUNCATE booking_appointment CASCADE")


def run(
    *, base_url: str, name: str, clients: int, slots: int, time_limit: float, keep: bool
) -> dict[str, Any]:
    url = database_url(base_url, name)
    recreate_database(base_url, name)
    try:
        env = bench_environment(url)
        migrate(url, env)
        setup_django(env)
        from django.db import connections

        hotspot = seed(clients=clients, slots=slots)
        connections.close_all()  # before forking: no connection may be shared with a child
        raw = race(raw_client, (hotspot, url, time_limit), clients=clients)
        check_and_reset(url, raw)
        service = race(service_client, (hotspot, time_limit), clients=clients)
        check_and_reset(url, service)
    finally:
        if not keep:
            from django.db import connections

            connections.close_all()
            recreate_database(base_url, name, drop_only=True)
    # Both variants make the same attempts unless the time limit cut one short: attempts/s is
    # then the comparable throughput (and equals 32 x bookings/s when both complete).
    ratio = service.attempts_per_s / raw.attempts_per_s if raw.attempts_per_s else 0.0
    return {
        "bench": "booking_race",
        "clients": clients,
        "slots": slots,
        "time_limit_s": time_limit,
        "complete": service.attempts == raw.attempts == clients * slots,
        "service": service.as_dict(),
        "raw": raw.as_dict(),
        "ratio": round(ratio, 3),
        "goal": f"0 double bookings, service throughput >= {GOAL_RATIO:.0%} of raw",
        "goal_met": ratio >= GOAL_RATIO
        and service.double_bookings == raw.double_bookings == 0
        and service.bookings == raw.bookings == slots,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"booking_race: {result['clients']} clients x {result['slots']} hot slots"
        + ("" if result["complete"] else f" (cut at {result['time_limit_s']:.0f} s)"),
        f"{'variant':<8} {'seconds':>8} {'filled in':>10} {'bookings/s':>11} {'attempts/s':>11} "
        f"{'bookings':>9} {'conflicts':>10} {'deadlocks':>10} {'errors':>7} {'double':>7}",
    ]
    for variant in ("service", "raw"):
        o = result[variant]
        fill = "-" if o["fill_seconds"] is None else f"{o['fill_seconds']:.2f}"
        lines.append(
            f"{variant:<8} {o['seconds']:>8.2f} {fill:>10} {o['bookings_per_s']:>11.1f} "
            f"{o['attempts_per_s']:>11.1f} {o['bookings']:>9} {o['conflicts']:>10} "
            f"{o['deadlocks']:>10} "
            f"{o['errors']:>7} {o['double_bookings']:>7}"
        )
    lines.append(f"service/raw throughput {result['ratio']:.0%}; goal met: {result['goal_met']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--time-limit", type=float, default=40.0, help="seconds per variant")
    parser.add_argument("--database", default="creneau_bench_race")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    result = run(
        base_url=base_url,
        name=args.database,
        clients=args.clients,
        slots=args.slots,
        time_limit=args.time_limit,
        keep=args.keep,
    )
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
