from typing import Any

from django.core.management.base import BaseCommand

from notifications.tasks import run_relay_in_process


class Command(BaseCommand):
    help = "Send due notifications in this process (for setups without Redis and Celery beat)."

    def handle(self, *args: Any, **options: Any) -> None:
        totals = run_relay_in_process()
        self.stdout.write(", ".join(f"{name} {count}" for name, count in totals.items()))
