from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import verify_log


def _month(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise CommandError(f"--month must look like 2026-11, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains. Exit 0 with the count when intact, 1 naming the first "
        "edited, removed, inserted or reordered event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", help="verify one month (YYYY-MM), e.g. one partition")

    def handle(self, *args: Any, **options: Any) -> None:
        month = _month(options["month"]) if options["month"] else None
        result = verify_log(month=month)
        if not result.ok:
            self.stderr.write(f"TAMPERED: {result.problem}")
            raise SystemExit(1)
        summary = f"OK: {result.verified} events verified in {len(result.months)} month(s)"
        if result.pending:
            summary += f", {result.pending} recent event(s) not sealed yet"
        if result.removed_by_retention:
            summary += f"; {result.removed_by_retention} older event(s) removed by retention"
        summary += " (checkpoints verified)" if result.removed_by_retention else ""
        self.stdout.write(summary)
