"""The agenda week view: server time and query count with 300 appointments in the week, against
the same view with 3 (the baseline), on PostgreSQL.

A practitioner open 07:00-21:00 every day with a 15-minute reason; the week of 1 June 2026 holds
300 appointments (or 3). `GET /agenda/?view=week&date=...` through the Django test client with
DEBUG off, logged in with a second factor as the practitioner. The query count must be the same
for both (it may not grow with the appointments shown); the time ratio shows what 100x the rows
cost (decrypting names, rendering, one bulk audit insert of 300 events).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/agenda.py [--json]
"""

import argparse
import json
import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Run as a script, so bench/ is on sys.path.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

DATABASE = "creneau_bench_agenda"
WEEK = date(2026, 6, 1)  # a Monday
BUSY, QUIET = 300, 3
STATIC_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"


def seed(count: int, *, number: int) -> Any:
    """A practitioner with `count` appointments in the week of WEEK; returns their user."""
    from datetime import time as wall
    from zoneinfo import ZoneInfo

    from accounts.models import Role, User
    from booking.models import Appointment
    from patients.models import Patient
    from practitioners.models import Practice, Practitioner, Specialty, VisitReason, WeeklyHours

    tz = ZoneInfo("Europe/Paris")
    specialty, _ = Specialty.objects.get_or_create(slug="generaliste", defaults={"name": "MG"})
    practice = Practice.objects.create(
        name="Cabinet", address="1 rue", postcode="75001", city="Paris"
    )
    user = User.objects.create_user(
        f"doctor{number}@example.test", password="x" * 12, role=Role.PRACTITIONER
    )
    practitioner = Practitioner.objects.create(
        user=user,
        first_name="Alix",
        last_name=f"Martin{number}",
        slug=f"alix-martin-{number}",
        specialty=specialty,
        practice=practice,
        rpps=f"{10000000000 + number}",
    )
    reason = VisitReason.objects.create(
        practitioner=practitioner, label="Consultation", duration_minutes=15
    )
    WeeklyHours.objects.bulk_create(
        WeeklyHours(practitioner=practitioner, weekday=day, start_time=wall(7), end_time=wall(21))
        for day in range(7)
    )
    patients = Patient.objects.bulk_create(
        Patient(first_name=f"Prénom{n}", last_name=f"Nom{n}", phone=f"+336{n:08d}")
        for n in range(min(count, 120))
    )
    per_day = -(-count // 7)
    starts = [
        datetime.combine(WEEK + timedelta(days=n // per_day), wall(7), tz)
        + timedelta(minutes=15 * (n % per_day))
        for n in range(count)
    ]
    Appointment.objects.bulk_create(
        Appointment(
            practitioner=practitioner,
            patient=patients[n % len(patients)],
            reason=reason,
            start=start,
            end=start + timedelta(minutes=15),
            channel="web",
        )
        for n, start in enumerate(starts)
    )
    return user


def client_for(user: Any) -> Any:
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def measure(client: Any, *, runs: int) -> dict[str, Any]:
    from django.db import connection

    def get() -> Any:
        return client.get("/agenda/", {"view": "week", "date": WEEK.isoformat()}, secure=True)

    for _ in range(3):
        assert get().status_code == 200
    queries: list[str] = []

    def count(execute: Any, sql: str, *args: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(count):
        get()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
        "queries": len(queries),
    }


def run(url: str, *, runs: int) -> dict[str, Any]:
    setup_django(bench_environment(url))
    import time_machine
    from django.conf import settings
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()
    busy = client_for(seed(BUSY, number=1))
    quiet = client_for(seed(QUIET, number=2))
    # Plain static storage: the benchmark does not run collectstatic.
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": STATIC_STORAGE}}
    with (
        override_settings(STORAGES=storages),
        time_machine.travel(datetime(2026, 6, 3, 10, tzinfo=UTC), tick=True),
    ):
        result_busy = measure(busy, runs=runs)
        result_quiet = measure(quiet, runs=runs)
    return {
        "bench": "agenda",
        "busy": {"appointments": BUSY, **result_busy},
        "quiet": {"appointments": QUIET, **result_quiet},
        "queries_constant": result_busy["queries"] == result_quiet["queries"],
        "time_ratio": round(result_busy["p50_ms"] / result_quiet["p50_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    url = database_url(base_url, DATABASE)
    recreate_database(base_url, DATABASE)
    try:
        migrate(url, {**os.environ, **bench_environment(url), "DEBUG": "1"})
        result = run(url, runs=args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(base_url, DATABASE, drop_only=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
