"""The FHIR API under a busy practitioner: Slot search over 14 days, Appointment search of one day,
and what the integration quotas cost per request.

On a scratch database (`creneau_bench_fhir`): one practitioner open 08:00-20:00 every day with a
15-minute reason, 40 appointments (40 distinct patients) tomorrow and 24 a day over the next two
weeks; an integration granted every scope, with a bearer token. Through the Django test client
with DEBUG off (server time, middleware included):

1. `GET Slot?schedule=...&start=ge<tomorrow>&start=lt<tomorrow+14>&_count=100`: p50/p95 and the
   query count;
2. `GET Appointment?practitioner=...&date=ge<tomorrow>&date=lt<day after>&_count=100` (40
   appointments, each audited): p50/p95 and the query count;
3. the same Appointment search with the quota checks (`check_request_quota` on the request,
   `admit_patients` on its 40 patients) and without them (both mocked out), in alternating blocks
   so that drift on the machine hits both alike: on the configured backend (Redis when REDIS_URL
   is set) and on the database backend.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/fhir.py [--json]
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

# Run as a script, so bench/ is on sys.path.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

DATABASE = "creneau_bench_fhir"
DAY_APPOINTMENTS = 40
OTHER_DAY_APPOINTMENTS = 24
SLOT_DAYS = 14
GOAL_P95_MS = 50
GOAL_QUOTA_RATIO = 1.2  # the quota checks add at most 20% to a request's p50


def seed() -> dict[str, Any]:
    """The busy practitioner, their agenda, an integration and its token; returns the URLs."""
    import secrets
    from datetime import time as clock

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from integrations.models import Integration
    from integrations.scopes import ALL_SCOPES
    from integrations.services import create_integration
    from practitioners.models import Practice, Practitioner, Specialty, VisitReason, WeeklyHours

    specialty = Specialty.objects.create(name="Médecine générale", slug="medecine-generale")
    practice = Practice.objects.create(
        name="Cabinet", address="1 rue", postcode="75001", city="Paris"
    )
    practitioner = Practitioner.objects.create(
        first_name="Alix",
        last_name="Martin",
        slug="alix-martin",
        specialty=specialty,
        practice=practice,
        rpps="10000000001",
    )
    reason = VisitReason.objects.create(
        practitioner=practitioner, label="Consultation", duration_minutes=15
    )
    WeeklyHours.objects.bulk_create(
        WeeklyHours(practitioner=practitioner, weekday=day, start_time=clock(8), end_time=clock(20))
        for day in range(7)
    )
    tomorrow = timezone.localdate(timezone=practice.tz) + timedelta(days=1)
    _seed_agenda(practitioner, reason, tomorrow)
    created = create_integration(
        name="Bench agenda", practitioner_ids=[practitioner.pk], scopes=ALL_SCOPES
    )
    # Quotas far above the run's traffic: the benchmark measures their cost, not a refusal.
    Integration.objects.filter(pk=created.integration.pk).update(
        requests_per_minute=100_000, patients_per_hour=1_000_000
    )
    token = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        token=token,
        application=created.integration.application,
        expires=timezone.now() + timedelta(days=1),
        scope=" ".join(ALL_SCOPES),
    )
    end = tomorrow + timedelta(days=SLOT_DAYS)
    return {
        "token": token,
        "slots": f"/fhir/r4/Slot?schedule=Schedule/{practitioner.pk}-{reason.pk}"
        f"&start=ge{tomorrow}&start=lt{end}&_count=100",
        "appointments": f"/fhir/r4/Appointment?practitioner=Practitioner/{practitioner.pk}"
        f"&date=ge{tomorrow}&date=lt{tomorrow + timedelta(days=1)}&_count=100",
    }


def _seed_agenda(practitioner: Any, reason: Any, first_day: Any) -> None:
    from booking.models import Appointment
    from patients.models import Patient

    patients = Patient.objects.bulk_create(
        Patient(first_name=f"Prénom{n}", last_name=f"Nom{n}", phone=f"+336{n:08d}")
        for n in range(DAY_APPOINTMENTS + OTHER_DAY_APPOINTMENTS)
    )
    tz = practitioner.practice.tz
    rows = []
    for offset in range(SLOT_DAYS):
        day = first_day + timedelta(days=offset)
        opening = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(hours=8)
        count = DAY_APPOINTMENTS if offset == 0 else OTHER_DAY_APPOINTMENTS
        # Every other quarter hour on the busy days ahead, packed on the day measured.
        step = 15 if offset == 0 else 30
        for n in range(count):
            start = opening + timedelta(minutes=step * n)
            rows.append(
                Appointment(
                    practitioner=practitioner,
                    patient=patients[n if offset == 0 else DAY_APPOINTMENTS + n],
                    reason=reason,
                    channel=Appointment.Channel.WEB,
                    start=start,
                    end=start + timedelta(minutes=15),
                )
            )
    Appointment.objects.bulk_create(rows)


def summary(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


def time_requests(get: Callable[[], Any], runs: int, expected: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        assert len(response.json().get("entry", [])) == expected
    return times


def query_count(get: Callable[[], Any]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        get()
    return len(queries)


def measured(get: Callable[[], Any], *, runs: int, expected: int) -> dict[str, Any]:
    time_requests(get, 10, expected)  # warm-up
    return {**summary(time_requests(get, runs, expected)), "queries": query_count(get)}


def quotas_off() -> AbstractContextManager[Any]:
    from contextlib import ExitStack
    from unittest import mock

    stack = ExitStack()
    stack.enter_context(mock.patch("integrations.fhir.pipeline.check_request_quota"))
    stack.enter_context(mock.patch("integrations.fhir.appointment_views.admit_patients"))
    return stack


def quota_cost(get: Callable[[], Any], *, backend: str, blocks: int, per_block: int) -> dict:
    """The Appointment search with the quota checks on and off, alternating blocks."""
    from django.test import override_settings

    on: list[float] = []
    off: list[float] = []
    with override_settings(INTEGRATIONS_QUOTA_BACKEND=backend):
        time_requests(get, 10, DAY_APPOINTMENTS)
        for _ in range(blocks):
            on += time_requests(get, per_block, DAY_APPOINTMENTS)
            with quotas_off():
                off += time_requests(get, per_block, DAY_APPOINTMENTS)
        queries_on = query_count(get)
        with quotas_off():
            queries_off = query_count(get)
    on_summary, off_summary = summary(on), summary(off)
    return {
        "backend": backend,
        "on": {**on_summary, "queries": queries_on},
        "off": {**off_summary, "queries": queries_off},
        "cost_p50_ms": round(on_summary["p50_ms"] - off_summary["p50_ms"], 2),
        "ratio": round(on_summary["p50_ms"] / off_summary["p50_ms"], 3),
    }


def isolate_quota_keys() -> None:
    """Quota counters of this run only: the scratch database's integration #1 must not count in
    (or against) the windows of an integration #1 elsewhere on the same Redis."""
    import secrets

    from django.conf import settings

    settings.INTEGRATIONS_QUOTA_KEY_PREFIX = f"bench-fhir-{secrets.token_hex(8)}:quota"


def forget_quota_keys() -> None:
    import redis
    from django.conf import settings

    if settings.INTEGRATIONS_QUOTA_REDIS_URL:
        client = redis.Redis.from_url(settings.INTEGRATIONS_QUOTA_REDIS_URL)
        keys = list(client.scan_iter(match=f"{settings.INTEGRATIONS_QUOTA_KEY_PREFIX}:*"))
        if keys:
            client.delete(*keys)


def run(url: str, *, runs: int, blocks: int, per_block: int) -> dict[str, Any]:
    setup_django(bench_environment(url))
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    isolate_quota_keys()
    target = seed()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {target['token']}")

    def get(path: str) -> Callable[[], Any]:
        return lambda: client.get(path, secure=True)

    slots = measured(get(target["slots"]), runs=runs, expected=100)
    appointments = measured(get(target["appointments"]), runs=runs, expected=DAY_APPOINTMENTS)
    backends = [settings.INTEGRATIONS_QUOTA_BACKEND]
    if "database" not in backends:
        backends.append("database")
    try:
        quotas = [
            quota_cost(
                get(target["appointments"]), backend=name, blocks=blocks, per_block=per_block
            )
            for name in backends
        ]
    finally:
        forget_quota_keys()
    worst_p95 = max(slots["p95_ms"], appointments["p95_ms"])
    return {
        "bench": "fhir",
        "slot_search_14_days": slots,
        "appointment_search_one_day": {**appointments, "appointments": DAY_APPOINTMENTS},
        "quota_check": quotas,
        "goal": f"p95 < {GOAL_P95_MS} ms; quota checks on/off p50 <= {GOAL_QUOTA_RATIO}",
        "goal_met": worst_p95 < GOAL_P95_MS
        and all(item["ratio"] <= GOAL_QUOTA_RATIO for item in quotas),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=30)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    url = database_url(base_url, DATABASE)
    recreate_database(base_url, DATABASE)
    try:
        migrate(url, {**os.environ, **bench_environment(url), "DEBUG": "1"})
        result = run(url, runs=args.runs, blocks=args.blocks, per_block=args.per_block)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(base_url, DATABASE, drop_only=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
