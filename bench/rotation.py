"""What encryption at rest costs: key rotation over 100,000 patients, and booking with and without
field encryption, on PostgreSQL.

1. 100,000 patients (names, birth date, phone, email: five encrypted values and two blind indexes
   each) bulk-created under one key; a second key is put first and `rotate_encryption_key` runs
   over every encrypted model: rows/s. Then `rotate_blind_index` with a new index key: rows/s.
   Both in batches of --batch-size rows, one transaction each, as in production.
2. `book_appointment` calls/s, a sequential loop over distinct free slots, each call preceded by
   loading the patient as a request would: with the real AES-GCM field encryption and with
   `accounts.crypto.encrypt`/`decrypt` replaced by the identity, in alternating blocks so that
   drift on the machine hits both alike; reported as a ratio (identity / encrypted). The
   after-commit hand-offs to Celery (confirmation, next-slots refresh) are no-ops in both.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/rotation.py [--json]
"""

import argparse
import base64
import io
import json
import os
import secrets
import time
from datetime import time as wall_time
from datetime import timedelta
from typing import Any

# Run as a script, so bench/ is on sys.path.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

DATABASE = "creneau_bench_rotation"
BLOCKS = 6  # alternating blocks per variant


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def seed_patients(count: int) -> float:
    from patients.models import Patient

    started = time.perf_counter()
    for offset in range(0, count, 5000):
        Patient.objects.bulk_create(
            Patient(
                first_name=f"Prénom{n}",
                last_name=f"Nom{n}",
                birth_date=f"19{50 + n % 50:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                phone=f"06{n:08d}",
                email=f"patient{n}@bench.test",
            )
            for n in range(offset, min(offset + 5000, count))
        )
    return time.perf_counter() - started


def timed_command(name: str, batch_size: int) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command(name, batch_size=batch_size, stdout=out, stderr=io.StringIO())
    return time.perf_counter() - started, out.getvalue()


def measure_rotation(patients: int, batch_size: int) -> dict[str, Any]:
    from django.conf import settings

    from accounts.models import User
    from patients.models import Patient, Relative

    rows = Patient.objects.count() + Relative.objects.count() + User.objects.count()
    settings.FIELD_ENCRYPTION_KEYS = [new_key(), *settings.FIELD_ENCRYPTION_KEYS]
    seconds, _out = timed_command("rotate_encryption_key", batch_size)
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key retired
    assert Patient.objects.order_by("-pk").first().last_name == f"Nom{patients - 1}"  # type: ignore[union-attr]
    again, out = timed_command("rotate_encryption_key", batch_size)
    assert "Done: 0 rows" in out, out
    settings.BLIND_INDEX_KEYS = [new_key(), *settings.BLIND_INDEX_KEYS]
    index_seconds, _out = timed_command("rotate_blind_index", batch_size)
    settings.BLIND_INDEX_KEYS = settings.BLIND_INDEX_KEYS[:1]
    return {
        "rows": rows,
        "rotate_seconds": round(seconds, 2),
        "rotate_rows_per_s": round(rows / seconds),
        "rerun_seconds": round(again, 2),
        "rerun_rows_per_s": round(rows / again),
        "index_seconds": round(index_seconds, 2),
        "index_rows_per_s": round(rows / index_seconds),
    }


def seed_agenda(bookings: int) -> Any:
    from django.utils import timezone

    from booking.slots import free_slots_for
    from practitioners.models import Practice, Practitioner, Specialty, VisitReason, WeeklyHours

    specialty = Specialty.objects.create(name="Médecine générale", slug="medecine-generale")
    practice = Practice.objects.create(
        name="Cabinet", address="1 rue du Test", postcode="75001", city="Paris"
    )
    practitioner = Practitioner.objects.create(
        first_name="Camille",
        last_name="Essai",
        slug="camille-essai",
        specialty=specialty,
        practice=practice,
        rpps="10000000009",
        minimum_notice_minutes=0,
        booking_horizon_days=90,
    )
    reason = VisitReason.objects.create(
        practitioner=practitioner, label="Consultation", duration_minutes=10
    )
    WeeklyHours.objects.bulk_create(
        WeeklyHours(
            practitioner=practitioner, weekday=day, start_time=wall_time(6), end_time=wall_time(23)
        )
        for day in range(7)
    )
    tomorrow = timezone.now().astimezone(practice.tz).date() + timedelta(days=1)
    days = bookings // 100 + 2
    starts = free_slots_for(
        practitioner=practitioner, reason=reason, first_day=tomorrow, days=days, for_staff=True
    )[:bookings]
    assert len(starts) == bookings, len(starts)
    return practitioner, reason, starts


def measure_booking(bookings: int) -> dict[str, Any]:
    from unittest import mock

    from accounts import crypto
    from audit.actors import system_actor
    from audit.models import Channel
    from booking import services as booking_services
    from booking.models import Appointment
    from booking.services import book_appointment
    from notifications import services as notification_services
    from patients.models import Patient

    practitioner, reason, starts = seed_agenda(bookings)
    patient_ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True)[:bookings])
    actor = system_actor("bench.rotation", channel=Channel.COMMAND)
    identity = {
        "encrypt": lambda plaintext, *, context: plaintext,
        "decrypt": lambda token, *, context, legacy_context=None: token,
    }

    def book(index: int) -> None:
        patient = Patient.objects.select_related("user").get(pk=patient_ids[index])
        book_appointment(
            actor=actor,
            practitioner=practitioner,
            reason=reason,
            start=starts[index],
            patient=patient,
            channel=Appointment.Channel.PHONE,
        )

    seconds = {"encrypted": 0.0, "identity": 0.0}
    done = {"encrypted": 0, "identity": 0}
    block = bookings // (2 * BLOCKS + 1)  # the first block warms caches and is not counted
    # Handed to the worker in production: not the request's cost, and the same in both variants.
    with (
        mock.patch.object(notification_services, "_enqueue_keys", return_value=None),
        mock.patch.object(booking_services, "refresh_after_commit", return_value=None),
    ):
        for index in range(block):
            book(index)
        for number in range(1, 2 * BLOCKS + 1):
            variant = "encrypted" if number % 2 == 1 else "identity"
            patches = (
                [mock.patch.object(crypto, name, fn) for name, fn in identity.items()]
                if variant == "identity"
                else []
            )
            for patch in patches:
                patch.start()
            started = time.perf_counter()
            for index in range(number * block, (number + 1) * block):
                book(index)
            seconds[variant] += time.perf_counter() - started
            done[variant] += block
            for patch in patches:
                patch.stop()
    rate = {variant: done[variant] / seconds[variant] for variant in seconds}
    return {
        "bookings": sum(done.values()),
        "encrypted_per_s": round(rate["encrypted"], 1),
        "identity_per_s": round(rate["identity"], 1),
        "identity_over_encrypted": round(rate["identity"] / rate["encrypted"], 3),
    }


def run(patients: int, batch_size: int, bookings: int) -> dict[str, Any]:
    seed_seconds = seed_patients(patients)
    rotation = measure_rotation(patients, batch_size)
    booking = measure_booking(bookings)
    return {
        "bench": "rotation",
        "patients": patients,
        "batch_size": batch_size,
        "seed_patients_per_s": round(patients / seed_seconds),
        **rotation,
        "booking": booking,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--bookings", type=int, default=1200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "")
    url = database_url(base_url, DATABASE)
    recreate_database(base_url, DATABASE)
    try:
        env = {**bench_environment(url), "REDIS_URL": ""}
        migrate(url, {**os.environ, **env, "DEBUG": "1"})
        setup_django(env)
        result = run(args.patients, args.batch_size, args.bookings)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(base_url, DATABASE, drop_only=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
