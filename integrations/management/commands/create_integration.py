from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from booking.errors import InvalidInput
from integrations.services import DEFAULT_GRANT_SCOPES, create_integration


def _practitioner_ids(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise CommandError(f"--grant takes practitioner ids like 1,2,3, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Register third-party practitioner software: an OAuth2 client (client credentials) and "
        "its integration, optionally granted by practitioners. Prints client_id= and "
        "client_secret= lines; the secret is shown only this once (it is stored hashed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the software's name, unique")
        parser.add_argument("--vendor", default="", help="the company behind it")
        parser.add_argument("--contact", default="", help="the vendor's security contact email")
        parser.add_argument(
            "--grant",
            default="",
            metavar="PRACTITIONER_ID,...",
            help="practitioners who consented (in writing) to connect it to their agenda",
        )
        parser.add_argument(
            "--scopes",
            default="",
            help='space-separated SMART system scopes of those grants (default: "'
            + " ".join(DEFAULT_GRANT_SCOPES)
            + '")',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = create_integration(
                name=options["name"],
                vendor=options["vendor"],
                contact_email=options["contact"],
                practitioner_ids=_practitioner_ids(options["grant"]),
                scopes=options["scopes"].split(),
            )
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"client_id={created.client_id}")
        self.stdout.write(f"client_secret={created.client_secret}")
