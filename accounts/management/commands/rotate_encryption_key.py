"""Re-encrypt every encrypted value under the newest key of FIELD_ENCRYPTION_KEYS (accounts.crypto).

Also rewrites v1 tokens (bound to table and column) as v2 tokens (bound to the row). Batches in
primary-key order, each its own transaction; resumable: a second run rewrites only what is left.
Once it reports nothing left (`--check` exits 0), the old key can leave FIELD_ENCRYPTION_KEYS.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from accounts import crypto, rotation


class Command(BaseCommand):
    help = "Re-encrypt personal data under the newest field encryption key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per transaction")
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit 1 if some value is not yet under the newest key and format",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = max(1, options["batch_size"])
        step = rotation.count_stale_values if options["check"] else rotation.rotate_encryption
        try:
            key = crypto.keyring()[0][0]
            totals = rotation.run_all(
                rotation.encrypted_models(), step, batch_size=batch_size, stream=self.stderr
            )
        except KeyboardInterrupt:
            raise CommandError("interrupted; run it again to resume", returncode=130) from None
        except (crypto.DecryptionError, ImproperlyConfigured, DatabaseError) as exc:
            # First line only: a database error may carry a DETAIL block.
            raise CommandError(f"rotation stopped: {str(exc).splitlines()[0]}") from exc
        verb = "to re-encrypt" if options["check"] else "re-encrypted"
        for label, total in totals.items():
            self.stdout.write(f"{label}: {total.rows} rows, {total.rewritten} {verb}")
        left = sum(total.rewritten for total in totals.values())
        if options["check"]:
            if left:
                raise CommandError(f"{left} rows still hold values not under key {key} (v2)")
            self.stdout.write(f"All values are under key {key} (v2).")
        else:
            self.stdout.write(f"Done: {left} rows re-encrypted under key {key}.")
