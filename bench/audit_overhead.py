"""What auditing costs: the appointments API with the audit on and off, and the write rate of
`record_access`, on PostgreSQL.

1. `GET /api/v1/appointments/?limit=50` for a patient with 50 appointments, through the Django
   test client with DEBUG off: server time with auditing on (one bulk insert of 50 events, each
   with its HMAC) and off (the selectors' `record_access` replaced by a no-op), in alternating
   blocks so that drift on the machine hits both alike. Goal: on/off p50 ratio at most 1.25.
2. `record_access` from 8 writer processes, each in its own transactions of 50 events (one API
   page) for a fixed time: events/s; baseline in the same run: the same rows bulk-inserted
   without `record_access` (no HMAC, no actor mapping). Also one sealer's rate over all the
   audited events, and verify_audit_log's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/audit_overhead.py [--json]
"""

import argparse
import json
import multiprocessing
import statistics
import time
from datetime import timedelta
from typing import Any

# Run as a script, so bench/ is on sys.path.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

DATABASE = "creneau_bench_audit"
PAGE = 50
WRITERS = 8
WRITE_SECONDS = 8.0
GOAL_RATIO = 1.25


def seed() -> Any:
    from django.utils import timezone

    from accounts.models import Role, User
    from booking.models import Appointment
    from patients.models import Patient
    from practitioners.models import Practice, Practitioner, Specialty, VisitReason

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
        practitioner=practitioner, label="Consultation", duration_minutes=20
    )
    user = User.objects.create_user(
        "bench-patient@example.test", password="x" * 12, role=Role.PATIENT
    )
    patient = Patient.objects.create(
        user=user, first_name="Camille", last_name="Durand", phone="+33600000000"
    )
    start = timezone.now() + timedelta(days=1)
    Appointment.objects.bulk_create(
        Appointment(
            practitioner=practitioner,
            patient=patient,
            reason=reason,
            channel="web",
            start=start + timedelta(minutes=30 * n),
            end=start + timedelta(minutes=30 * n + 20),
        )
        for n in range(PAGE)
    )
    return user


def time_requests(get: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        assert len(response.json()["results"]) == PAGE
    return times


def summary(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


def api_overhead(*, blocks: int, per_block: int) -> dict[str, Any]:
    from unittest import mock

    from django.test import Client

    from audit.models import AccessEvent

    user = seed()
    client = Client()
    client.force_login(user)

    def get() -> Any:
        return client.get("/api/v1/appointments/", {"limit": PAGE}, secure=True)

    time_requests(get, 20)  # warm-up, both paths
    on: list[float] = []
    off: list[float] = []
    before = AccessEvent.objects.count()
    for _ in range(blocks):
        on += time_requests(get, per_block)
        with mock.patch("booking.selectors.record_access", return_value=[]):
            off += time_requests(get, per_block)
    written = AccessEvent.objects.count() - before
    assert written == PAGE * blocks * per_block, written  # auditing really was on
    on_summary, off_summary = summary(on), summary(off)
    return {
        "on": on_summary,
        "off": off_summary,
        "ratio": round(on_summary["p50_ms"] / off_summary["p50_ms"], 3),
    }


def _writer(mode: str, seconds: float, queue: Any) -> None:
    from django.db import connection, transaction

    from audit.models import AccessEvent, Action, ActorKind, Channel
    from audit.services import AppointmentRef, record_access
    from tests.factories import make_actor

    actor = make_actor(None, channel=Channel.API)
    refs = [AppointmentRef(id=n, patient_id=n % 7, practitioner_id=1) for n in range(PAGE)]
    written = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with transaction.atomic():
            if mode == "record_access":
                record_access(actor=actor, action=Action.LIST, appointments=refs)
            else:
                AccessEvent.objects.bulk_create(
                    AccessEvent(
                        actor_kind=ActorKind.ANONYMOUS,
                        action=Action.LIST,
                        channel=Channel.API,
                        appointment_id=ref.id,
                        patient_id=ref.patient_id,
                        practitioner_id=ref.practitioner_id,
                        request_id="bench",
                        mac="",
                    )
                    for ref in refs
                )
        written += PAGE
    connection.close()
    queue.put(written)


def write_rate(mode: str) -> dict[str, Any]:
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(target=_writer, args=(mode, WRITE_SECONDS, queue)) for _ in range(WRITERS)
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    total = sum(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    elapsed = time.monotonic() - started
    return {"events": total, "seconds": round(elapsed, 2), "events_per_s": round(total / elapsed)}


def seal_and_verify() -> dict[str, Any]:
    """One sealer over everything the writers left, then verify_audit_log's walk of it."""
    from audit.chain import seal_pending, verify_log

    started = time.monotonic()
    sealed = seal_pending()
    sealing = time.monotonic() - started
    started = time.monotonic()
    verified = verify_log()
    verifying = time.monotonic() - started
    return {
        "sealed": sealed,
        "seal_events_per_s": round(sealed / sealing),
        "verify_ok": verified.ok,
        "verified": verified.verified,
        "verify_events_per_s": round(verified.verified / verifying),
    }


def run(url: str, *, blocks: int, per_block: int) -> dict[str, Any]:
    setup_django(bench_environment(url))
    from django.test.utils import setup_test_environment

    setup_test_environment()
    api = api_overhead(blocks=blocks, per_block=per_block)
    audited = write_rate("record_access")
    chain = seal_and_verify()  # before the baseline's rows, which carry no mac
    baseline = write_rate("bulk_create")
    return {
        "bench": "audit_overhead",
        "api": api,
        "goal": f"on/off <= {GOAL_RATIO}",
        "goal_met": api["ratio"] <= GOAL_RATIO,
        "writers": WRITERS,
        "events_per_transaction": PAGE,
        "record_access": audited,
        "bulk_create_baseline": baseline,
        "write_ratio": round(audited["events_per_s"] / baseline["events_per_s"], 3),
        "chain": chain,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=30)
    args = parser.parse_args()
    import os

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    url = database_url(base_url, DATABASE)
    recreate_database(base_url, DATABASE)
    try:
        migrate(url, {**os.environ, **bench_environment(url), "DEBUG": "1"})
        result = run(url, blocks=args.blocks, per_block=args.per_block)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(base_url, DATABASE, drop_only=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
