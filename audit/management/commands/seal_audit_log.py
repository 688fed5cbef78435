from typing import Any

from django.core.management.base import BaseCommand

from audit.chain import seal_pending


class Command(BaseCommand):
    help = "Append committed access events to the audit hash chain (beat does it every 10 s)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"sealed {seal_pending()} events")
