"""manage.py breach_report --integration ID --since ISO --until ISO [--notify] [--revoke]
[--output FILE]: the article 33 draft of a suspected breach by an integration (privacy.services).

Prints the Markdown draft (or writes it to FILE) and, on stderr, one summary line of counts.
Bad input exits 1 with one line. Reading the access log is recorded as this command.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from audit.actors import system_actor
from audit.models import Channel
from privacy.services import BreachInputError, analyze_breach, file_breach_report

NAME = "breach_report"


def parse_instant(value: str) -> Any:
    """An ISO 8601 date-time, or a date (midnight, local time); None when neither."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = parse_datetime(f"{day.isoformat()}T00:00") if day else None
    except ValueError:
        return None
    return moment


class Command(BaseCommand):
    help = "Draft the GDPR article 33 notification of a breach by an integration."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--integration", type=int, required=True, help="integration id")
        parser.add_argument("--since", required=True, help="start of the window (ISO 8601)")
        parser.add_argument("--until", required=True, help="end of the window, excluded")
        parser.add_argument(
            "--notify",
            action="store_true",
            help="queue the article 34 messages to patients and practitioners (once each)",
        )
        parser.add_argument(
            "--revoke", action="store_true", help="revoke the integration (final) in this run"
        )
        parser.add_argument("--output", help="write the Markdown draft to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = system_actor(NAME, channel=Channel.COMMAND)
        try:
            analysis = analyze_breach(
                actor=actor,
                integration_id=options["integration"],
                since=parse_instant(options["since"]),
                until=parse_instant(options["until"]),
            )
        except BreachInputError as error:
            raise CommandError(str(error)) from None
        filed = file_breach_report(
            actor=actor, analysis=analysis, notify=options["notify"], revoke=options["revoke"]
        )
        if options["output"]:
            Path(options["output"]).write_text(filed.draft, encoding="utf-8")
        else:
            self.stdout.write(filed.draft, ending="")
        report = filed.report
        summary = (
            f"report #{report.pk}: {report.patients} patients ({report.identified_patients} "
            f"identified), {report.appointments} appointments, {report.practitioners} "
            f"practitioners, {report.events} events"
        )
        if filed.notified is not None:
            summary += (
                f"; queued {filed.notified.patients} patient and {filed.notified.practitioners} "
                f"practitioner messages ({filed.notified.already} already queued)"
            )
        if options["revoke"]:
            summary += "; integration revoked" if filed.revoked else "; integration already revoked"
        self.stderr.write(summary)
