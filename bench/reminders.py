"""Reminder throughput through Redis and real Celery workers, batched against one task per row.

A scratch PostgreSQL database gets a few hundred booked appointments and, pointing at them, due SMS
reminders with distinct idempotency keys. Real worker processes (`celery -A config worker`,
prefork) deliver them through a fake SMS provider that takes 20 ms per call and records every
key it is given. First the naive version: one `deliver_notifications` task per row, on a subset;
then the real path: `relay_pending` hands every due row out in batches of
NOTIFICATIONS_BATCH_SIZE. For each: enqueue time, drain time (from the first task handed out to
the last row sent), messages/s, duplicates (keys the provider got twice) and losses (rows not sent,
or marked sent without the provider having the key).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/reminders.py [--json]

The benchmark creates (and drops) its own database next to the one DATABASE_URL names, and starts
its own redis-server on a free port (or uses --redis-url, whose database it flushes).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

# Run as a script, so bench/ is on sys.path; the workers get it on PYTHONPATH to find the sink.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 10.0
APPOINTMENTS = 300


# --- The fake provider (imported by the workers: SMS_BACKEND=reminders.SlowSmsSink) ------------


class SlowSmsSink:
    """An SMS backend whose every call (one message or a batch) takes BENCH_CALL_SECONDS, and
    which appends the idempotency keys it accepted to BENCH_SINK_DIR/<pid>.keys.

    A provider with a batch endpoint: a call sends all of its messages or none (this one never
    fails), so delivery may send a whole batch in one call (notifications.sms.atomic_batches).
    Against a provider without one, delivery makes one call per message, batch or not."""

    atomic_batches = True

    def __init__(self, **kwargs: Any) -> None:
        self.call_seconds = float(os.environ.get("BENCH_CALL_SECONDS", "0.02"))
        self.path = Path(os.environ["BENCH_SINK_DIR"]) / f"{os.getpid()}.keys"

    def send_messages(self, messages: list[Any]) -> int:
        time.sleep(self.call_seconds)
        with self.path.open("a") as sink:
            sink.write("".join(f"{message.idempotency_key}\n" for message in messages))
        return len(messages)


def sink_keys(folder: Path) -> Counter[str]:
    keys: Counter[str] = Counter()
    for path in folder.glob("*.keys"):
        keys.update(path.read_text().splitlines())
    return keys


# --- Processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"reminders: timed out waiting for {what}")
        time.sleep(0.1)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for(answers, timeout=10, what="redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def start_workers(env: dict[str, str], *, concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    """One worker (prefork, `concurrency` children) in its own process group."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "-Q",
                "celery",
                "-n",
                f"bench-reminders-{os.getpid()}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"reminders: the worker exited; see {log}")
        return b" ready." in log.read_bytes()

    wait_for(ready, timeout=60, what="the worker")
    return process


def stop(process: subprocess.Popen[bytes] | None, *, group: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    if group:
        os.killpg(process.pid, signal.SIGKILL)  # the rows are dropped with the database
    else:
        process.terminate()
    process.wait(timeout=20)


# --- Seeding --------------------------------------------------------------------------------


def seed_appointments() -> list[int]:
    """One practitioner, APPOINTMENTS booked appointments from the day after tomorrow, each
    for its own patient with a phone and no email (so reminders go by SMS)."""
    from django.utils import timezone

    from booking.models import Appointment
    from patients.models import Patient
    from practitioners.models import Practice, Practitioner, Specialty, VisitReason

    specialty = Specialty.objects.create(name="Médecin généraliste", slug="medecin-generaliste")
    practice = Practice.objects.create(
        name="Cabinet du banc d'essai", address="1 rue du Test", postcode="75001", city="Paris"
    )
    practitioner = Practitioner.objects.create(
        first_name="Camille",
        last_name="Rappel",
        slug="camille-rappel",
        specialty=specialty,
        practice=practice,
        rpps="10000000017",
    )
    reason = VisitReason.objects.create(
        practitioner=practitioner, label="Consultation", duration_minutes=15
    )
    patients = Patient.objects.bulk_create(
        Patient(first_name="Patient", last_name=f"{n}", phone=f"06{n:08d}")
        for n in range(APPOINTMENTS)
    )
    first = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    appointments = Appointment.objects.bulk_create(
        Appointment(
            practitioner=practitioner,
            patient=patient,
            reason=reason,
            start=first + timedelta(minutes=20 * n),
            end=first + timedelta(minutes=20 * n + 15),
            status=Appointment.Status.BOOKED,
            channel=Appointment.Channel.PHONE,
        )
        for n, patient in enumerate(patients)
    )
    return [appointment.pk for appointment in appointments]


def seed_reminders(variant: str, rows: int, appointment_ids: list[int]) -> None:
    """`rows` due SMS reminders, spread over the appointments, keys `<variant>:<n>`."""
    from django.utils import timezone

    from notifications.models import Notification

    due = timezone.now() - timedelta(minutes=1)
    Notification.objects.bulk_create(
        (
            Notification(
                kind=Notification.Kind.REMINDER,
                channel=Notification.Channel.SMS,
                recipient=Notification.Recipient.PATIENT,
                appointment_id=appointment_ids[n % len(appointment_ids)],
                idempotency_key=f"{variant}:{n}",
                scheduled_for=due,
            )
            for n in range(rows)
        ),
        batch_size=5000,
    )


# --- Measuring ------------------------------------------------------------------------------


def drain(variant: str, started: float, time_limit: float) -> tuple[float, bool]:
    """Seconds from `started` until no row of `variant` is pending or sending (or the limit)."""
    from notifications.models import Notification

    open_rows = Notification.objects.filter(
        idempotency_key__startswith=f"{variant}:",
        status__in=[Notification.Status.PENDING, Notification.Status.SENDING],
    )
    while open_rows.exists():
        if time.monotonic() - started > time_limit:
            return time.monotonic() - started, False
        time.sleep(0.2)
    return time.monotonic() - started, True


def outcome(
    variant: str, rows: int, sink: Counter[str], enqueue: float, seconds: float, done: bool
) -> dict[str, Any]:
    from notifications.models import Notification

    statuses = Counter(
        Notification.objects.filter(idempotency_key__startswith=f"{variant}:").values_list(
            "status", flat=True
        )
    )
    sent_keys = set(
        Notification.objects.filter(
            idempotency_key__startswith=f"{variant}:", status=Notification.Status.SENT
        ).values_list("idempotency_key", flat=True)
    )
    mine = {key: count for key, count in sink.items() if key.startswith(f"{variant}:")}
    remaining = statuses[Notification.Status.PENDING] + statuses[Notification.Status.SENDING]
    # Lost: given up on (failed, cancelled), or marked sent while the provider never had it.
    lost = rows - remaining - len(sent_keys) + len(sent_keys - mine.keys())
    sent = len(sent_keys)
    return {
        "rows": rows,
        "complete": done,
        "enqueue_s": round(enqueue, 2),
        "drain_s": round(seconds, 2),
        "sent": sent,
        "messages_per_s": round(sent / seconds, 1) if seconds else 0.0,
        "duplicates": sum(1 for count in mine.values() if count > 1),
        "losses": lost,
        "remaining": remaining,
    }


def run_naive(rows: int, appointment_ids: list[int], sink: Path, limit: float) -> dict[str, Any]:
    """One task per row, each sending its one message: one provider call per message."""
    from notifications.models import Notification
    from notifications.tasks import deliver_notifications

    seed_reminders("naive", rows, appointment_ids)
    ids = list(
        Notification.objects.filter(idempotency_key__startswith="naive:").values_list(
            "pk", flat=True
        )
    )
    started = time.monotonic()
    for pk in ids:
        deliver_notifications.delay([pk])
    enqueue = time.monotonic() - started
    seconds, done = drain("naive", started, limit)
    return outcome("naive", rows, sink_keys(sink), enqueue, seconds, done)


def run_batched(rows: int, appointment_ids: list[int], sink: Path, limit: float) -> dict[str, Any]:
    """The production path: the relay hands due rows out in batches (what beat runs)."""
    from django.conf import settings

    from notifications.tasks import relay_pending

    seed_reminders("batched", rows, appointment_ids)
    started = time.monotonic()
    handed_out = 0
    # The relay hands out NOTIFICATIONS_RELAY_LIMIT rows per run; beat runs it every minute,
    # the benchmark as many times as it takes.
    while handed := relay_pending():
        handed_out += handed
    enqueue = time.monotonic() - started
    seconds, done = drain("batched", started, limit)
    result = outcome("batched", rows, sink_keys(sink), enqueue, seconds, done)
    result["handed_out"] = handed_out
    result["batch_size"] = settings.NOTIFICATIONS_BATCH_SIZE
    result["relay_limit"] = settings.NOTIFICATIONS_RELAY_LIMIT
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    url = database_url(base_url, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="creneau-bench-reminders-"))
    sink = workdir / "sink"
    sink.mkdir()
    redis_process, redis_url = (None, args.redis_url) if args.redis_url else start_redis(workdir)
    flush_redis(redis_url)
    worker = None
    recreate_database(base_url, args.database)
    try:
        env = {**bench_environment(url), "REDIS_URL": redis_url}
        migrate(url, env)
        setup_django(env)
        worker_env = {
            **env,
            "DATABASE_POOL": "1",  # as in production: each worker process keeps a pool
            "SMS_BACKEND": "reminders.SlowSmsSink",
            "BENCH_SINK_DIR": str(sink),
            "BENCH_CALL_SECONDS": str(args.call_ms / 1000),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
        }
        worker = start_workers(worker_env, concurrency=args.concurrency, log=workdir / "w.log")
        appointment_ids = seed_appointments()
        naive = run_naive(args.naive_rows, appointment_ids, sink, args.time_limit)
        batched = run_batched(args.rows, appointment_ids, sink, args.time_limit)
    finally:
        stop(worker, group=True)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(base_url, args.database, drop_only=True)
        if redis_process is not None:
            stop(redis_process)
        else:
            flush_redis(redis_url)
    ratio = batched["messages_per_s"] / naive["messages_per_s"] if naive["messages_per_s"] else 0
    clean = all(v["duplicates"] == v["losses"] == v["remaining"] == 0 for v in (naive, batched))
    return {
        "bench": "reminders",
        "concurrency": args.concurrency,
        "call_ms": args.call_ms,
        "time_limit_s": args.time_limit,
        "naive": naive,
        "batched": batched,
        "ratio": round(ratio, 1),
        "goal": f"0 duplicates, 0 losses, batched >= {GOAL_RATIO:.0f}x naive messages/s",
        "goal_met": clean and ratio >= GOAL_RATIO,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"reminders: {result['concurrency']} worker processes, fake SMS provider "
        f"{result['call_ms']} ms per call",
        f"{'variant':<8} {'rows':>7} {'enqueue s':>10} {'drain s':>8} {'sent':>7} {'msg/s':>8} "
        f"{'dup':>4} {'lost':>5} {'left':>6}",
    ]
    for variant in ("batched", "naive"):
        o = result[variant]
        lines.append(
            f"{variant:<8} {o['rows']:>7} {o['enqueue_s']:>10.2f} {o['drain_s']:>8.2f} "
            f"{o['sent']:>7} {o['messages_per_s']:>8.1f} {o['duplicates']:>4} {o['losses']:>5} "
            f"{o['remaining']:>6}"
        )
    lines.append(f"batched/naive x{result['ratio']}; goal met: {result['goal_met']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="due reminders, batched")
    parser.add_argument("--naive-rows", type=int, default=3_000, help="rows for the naive run")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--call-ms", type=float, default=20.0, help="fake provider, per call")
    parser.add_argument("--time-limit", type=float, default=150.0, help="seconds per variant")
    parser.add_argument("--database", default="creneau_bench_reminders")
    parser.add_argument("--redis-url", help="an existing Redis to use (its database is flushed)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
