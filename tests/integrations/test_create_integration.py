"""`manage.py create_integration` (DESIGN contract): prints client_id= and client_secret= lines, the
secret only this once (stored hashed); validates scopes and practitioners, failing with one line
and a non-zero exit."""

from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command, load_command_class
from django.db import connections
from django.utils import translation
from oauth2_provider.models import Application

from integrations.models import Grant, Integration
from integrations.scopes import APPOINTMENT_READ, SLOT_READ
from tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_integration", *args, stdout=out)
    return out.getvalue().splitlines()


def run_from_shell(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """As from a terminal: BaseCommand turns a CommandError into one stderr line and exit 1."""
    # It closes every connection when done, the test's transaction with it: not here.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    command = load_command_class("integrations", "create_integration")
    with translation.override("en"), pytest.raises(SystemExit) as exit_:
        command.run_from_argv(["manage.py", "create_integration", *args])
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


def test_it_prints_the_client_id_and_the_secret_once_and_stores_a_hash(client):
    lines = run("--name", "AgendaPro", "--vendor", "AgendaPro SAS")

    assert len(lines) == 2
    assert lines[0].startswith("client_id=")
    assert lines[1].startswith("client_secret=")
    client_id, secret = lines[0].removeprefix("client_id="), lines[1].removeprefix("client_secret=")
    application = Application.objects.get(client_id=client_id)
    assert application.client_secret != secret
    assert check_password(secret, application.client_secret)
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    assert application.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    integration = Integration.objects.get(application=application)
    assert (integration.name, integration.vendor, integration.status) == (
        "AgendaPro",
        "AgendaPro SAS",
        Integration.Status.ACTIVE,
    )
    # The printed credentials work at the token endpoint.
    response = client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.content


def test_it_grants_the_practitioners_named_with_the_scopes_given():
    first, second = PractitionerFactory(), PractitionerFactory()

    lines = run(
        "--name",
        "AgendaPro",
        "--grant",
        f"{first.pk},{second.pk}",
        "--scopes",
        f"{APPOINTMENT_READ} {SLOT_READ}",
    )

    grants = Grant.objects.filter(integration__name="AgendaPro").order_by("practitioner_id")
    assert [grant.practitioner_id for grant in grants] == [first.pk, second.pk]
    assert all(grant.scopes == [SLOT_READ, APPOINTMENT_READ] for grant in grants)
    assert all(grant.revoked_at is None and grant.expires_at is None for grant in grants)
    output = "\n".join(lines)
    for name in (first.first_name, first.last_name, second.last_name):
        assert name not in output  # ids in, credentials out: nothing personal


def test_a_grant_without_scopes_gets_slot_read_only():
    practitioner = PractitionerFactory()

    run("--name", "Minimal", "--grant", str(practitioner.pk))

    assert Grant.objects.get(practitioner=practitioner).scopes == [SLOT_READ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--scopes", "system/Slot.read system/Everything.read"],
            "Unknown scope: system/Everything.read",
        ),
        (["--grant", "999999"], "Unknown practitioner id: 999999"),
        (["--grant", "1,two"], "--grant takes practitioner ids"),
        (["--contact", "not an email"], "Enter a valid contact email."),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_and_creates_nothing(
    capsys, monkeypatch, args, message
):
    code, out, err = run_from_shell(capsys, monkeypatch, "--name", "AgendaPro", *args)

    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert not Integration.objects.exists()
    assert not Application.objects.exists()


def test_a_taken_name_is_refused(capsys, monkeypatch):
    run("--name", "AgendaPro")

    code, _, err = run_from_shell(capsys, monkeypatch, "--name", "AgendaPro")

    assert code == 1
    assert "Choose a new, non-empty integration name." in err
    assert Integration.objects.count() == 1
