from typing import Any

from django.core.management.base import BaseCommand

from audit.retention import purge_expired_events


class Command(BaseCommand):
    help = "Apply retention: remove what is older than the configured periods, and say what went."

    def handle(self, *args: Any, **options: Any) -> None:
        audit = purge_expired_events()
        months = ", ".join(f"{month:%Y-%m}" for month in audit.months) or "none"
        self.stdout.write(
            f"audit log: kept from {audit.cutoff:%Y-%m-%d}; removed {audit.events} events "
            f"(months: {months}), each month checkpointed"
        )
        for month in audit.kept_tampered:
            self.stderr.write(
                f"audit log: {month:%Y-%m} kept: its chain does not verify (run verify_audit_log)"
            )
