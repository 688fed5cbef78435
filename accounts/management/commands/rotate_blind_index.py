"""Recompute every blind index with the newest key of BLIND_INDEX_KEYS (accounts.crypto).

Lookups try every listed key meanwhile, so logins and phone searches keep working. Batches in
primary-key order, each its own transaction; resumable: a second run rewrites only what is left.
Afterwards the old key can leave BLIND_INDEX_KEYS.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, IntegrityError

from accounts import crypto, rotation


class Command(BaseCommand):
    help = "Recompute the blind indexes of personal data with the newest blind-index key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = max(1, options["batch_size"])
        try:
            totals = rotation.run_all(
                rotation.indexed_models(),
                rotation.rotate_index,
                batch_size=batch_size,
                stream=self.stderr,
            )
        except KeyboardInterrupt:
            raise CommandError("interrupted; run it again to resume", returncode=130) from None
        except IntegrityError as exc:
            # Two accounts with one address: possible only if one signed up under a new key
            # before the other's index was recomputed. Ids only in the message.
            raise CommandError("rotation stopped: two rows share an indexed value") from exc
        except (crypto.DecryptionError, ImproperlyConfigured, DatabaseError) as exc:
            # First line only: a database error may carry a DETAIL block.
            raise CommandError(f"rotation stopped: {str(exc).splitlines()[0]}") from exc
        for label, total in totals.items():
            self.stdout.write(f"{label}: {total.rows} rows, {total.rewritten} re-indexed")
        left = sum(total.rewritten for total in totals.values())
        self.stdout.write(f"Done: {left} rows re-indexed with the newest blind-index key.")
