"""Recompute the next-free-slots table (booking.next_slots).

Without options: every practitioner taking bookings online, in batches (after a deployment or a
bulk import). With --stale: only the rows whose validity has passed, so searches rarely have to
recompute them themselves; meant to run every few minutes (cron or Celery beat).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from booking.next_slots import BATCH_SIZE, refresh_expired, refresh_in_batches
from practitioners.models import Practitioner


class Command(BaseCommand):
    help = "Recompute the next free slots that search sorts by."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stale", action="store_true", help="only rows past their validity")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = max(1, options["batch_size"])
        if options["stale"]:
            rows = refresh_expired(batch_size=batch_size)
        else:
            # Also the practitioners who stopped taking bookings online: their rows go.
            ids = list(Practitioner.objects.values_list("pk", flat=True))
            rows = refresh_in_batches(practitioner_ids=ids, batch_size=batch_size)
        self.stdout.write(f"refresh_next_slots: {rows} rows written.")
