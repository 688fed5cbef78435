"""The breach drill (issue #8): replay a harvest by an integration through the audit log as the
FHIR API records it, run `breach_report`, and check its counts against the truth, its draft, and
that each person concerned gets exactly one message, however often it runs."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from accounts.models import Role
from audit.actors import Actor
from audit.models import AccessEvent, Action, ActorKind, Channel
from audit.services import record_access, record_denial
from booking.models import Appointment
from integrations.models import Grant, Integration
from integrations.scopes import ALL_SCOPES, APPOINTMENT_READ, SLOT_READ
from notifications.messages import build_message
from notifications.models import Notification
from privacy.draft import SECTIONS
from privacy.models import BreachReport
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, UserFactory
from tests.integrations.fhir_support import connect

SINCE = datetime(2026, 5, 1, tzinfo=UTC)
UNTIL = datetime(2026, 5, 2, tzinfo=UTC)
PSEUDONYMOUS = [SLOT_READ, APPOINTMENT_READ]


@dataclass
class Harvest:
    integration: Integration
    identified_practitioner: int  # granted system/Patient.read
    read: list[Appointment]  # in the window, not refused: the truth
    no_contact_patient: int
    sms_patient: int

    @property
    def patients(self) -> set[int]:
        return {a.patient_id for a in self.read}

    @property
    def practitioners(self) -> set[int]:
        return {a.practitioner_id for a in self.read}

    @property
    def identified(self) -> set[int]:
        return {
            a.patient_id for a in self.read if a.practitioner_id == self.identified_practitioner
        }


def _actor(integration: Integration) -> Actor:
    return Actor(
        kind=ActorKind.INTEGRATION,
        channel=Channel.FHIR,
        label=integration.name,
        integration_id=integration.pk,
        request_id="drill",
    )


def _appointments(practitioner, patients, *, day: int) -> list[Appointment]:
    start = datetime(2026, 6, day, 7, tzinfo=UTC)
    return [
        AppointmentFactory(
            practitioner=practitioner, patient=patient, start=start + timedelta(minutes=30 * i)
        )
        for i, patient in enumerate(patients)
    ]


@pytest.fixture
def harvest(db) -> Harvest:
    with time_machine.travel(datetime(2026, 4, 1, tzinfo=UTC), tick=False):
        doctors = [PractitionerFactory() for _ in range(3)]
        bystander = PractitionerFactory()  # granted, but read only outside the window
        connection = connect(doctors[0], scopes=ALL_SCOPES)
        integration = connection.integration
        for practitioner in (doctors[1], doctors[2], bystander):
            Grant.objects.create(
                integration=integration, practitioner=practitioner, scopes=PSEUDONYMOUS
            )
        patients = [PatientFactory() for _ in range(12)]
        sms_only = PatientFactory(user=None, email="", phone="0611223344")
        no_contact = PatientFactory(user=None, email="", phone="")
    # Patients 0-3 see doctor 0 and doctor 1: counted once each; patient 4 twice with doctor 2.
    seen = [
        *_appointments(doctors[0], [*patients[:6], sms_only], day=3),
        *_appointments(doctors[1], [*patients[:4], no_contact], day=4),
        *_appointments(doctors[2], [patients[4], patients[4], *patients[6:9]], day=5),
    ]
    earlier = _appointments(bystander, patients[9:11], day=6)  # before the window only
    later = _appointments(doctors[1], [patients[11]], day=7)  # after the window only
    refused = _appointments(bystander, [patients[11]], day=8)
    actor = _actor(integration)
    with time_machine.travel(SINCE - timedelta(hours=2), tick=False):
        record_access(actor=actor, action=Action.LIST, appointments=earlier)
    for hour, batch in enumerate((seen[:5], seen[3:10], seen[10:])):
        with time_machine.travel(SINCE + timedelta(hours=3 + hour), tick=False):
            record_access(actor=actor, action=Action.LIST, appointments=batch)
            record_access(actor=actor, action=Action.VIEW, appointments=batch[:1])
    with time_machine.travel(SINCE + timedelta(hours=6), tick=False):
        record_denial(actor=actor, appointment_id=refused[0].pk, detail="fhir: not granted")
    with time_machine.travel(UNTIL, tick=False):  # the end is excluded
        record_access(actor=actor, action=Action.LIST, appointments=later)
    return Harvest(
        integration=integration,
        identified_practitioner=doctors[0].pk,
        read=seen,
        no_contact_patient=no_contact.pk,
        sms_patient=sms_only.pk,
    )


def _run(harvest: Harvest, *flags: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(
        "breach_report",
        "--integration",
        str(harvest.integration.pk),
        "--since",
        SINCE.isoformat(),
        "--until",
        UNTIL.isoformat(),
        *flags,
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


def _breach_rows(recipient: str) -> list[Notification]:
    return list(
        Notification.objects.filter(kind=Notification.Kind.BREACH, recipient=recipient)
        .select_related("appointment")
        .order_by("pk")
    )


def test_counts_match_the_harvest(harvest):
    draft, summary = _run(harvest)

    report = BreachReport.objects.get()
    assert report.patients == len(harvest.patients) == 11
    assert report.identified_patients == len(harvest.identified) == 7
    assert report.appointments == len(harvest.read) == 17
    assert report.practitioners == len(harvest.practitioners) == 3
    assert report.denied == 1
    assert report.first_access == SINCE + timedelta(hours=3)
    assert report.last_access == SINCE + timedelta(hours=5)
    assert report.notified_at is None
    assert report.draft == draft
    assert f"report #{report.pk}: 11 patients (7 identified), 17 appointments" in summary


def test_draft_has_every_article_33_section(harvest, settings):
    settings.DPO_CONTACT = "dpo@creneau.example"
    draft, _ = _run(harvest)

    for section in SECTIONS:
        assert section in draft
    assert "Patients (data subjects): 11, of whom 7 with name and phone number exposed" in draft
    assert "Appointments (records): 17" in draft
    assert "Practitioners whose agendas were read: 3" in draft
    assert "No health data beyond appointment metadata was exposed" in draft
    assert "First access in the window: 2026-05-01 05:00" in draft  # Paris time
    assert "Risk: high" in draft
    assert "still ACTIVE" in draft
    assert "dpo@creneau.example" in draft
    # Counts and dates only: no patient appears in it.
    for appointment in harvest.read:
        assert appointment.patient.last_name not in draft
        assert not appointment.patient.phone or appointment.patient.phone not in draft


def test_draft_goes_to_the_output_file(harvest, tmp_path):
    target = tmp_path / "breach.md"
    out, _ = _run(harvest, "--output", str(target))

    assert out == ""
    assert target.read_text().startswith("# Personal data breach notification (GDPR article 33)")


def test_reading_the_log_for_the_report_is_recorded(harvest):
    _run(harvest)

    recorded = AccessEvent.objects.filter(
        actor_kind=ActorKind.SYSTEM, actor_label="breach_report", channel=Channel.COMMAND
    )
    assert set(recorded.values_list("appointment_id", flat=True)) == {a.pk for a in harvest.read}


def test_notify_queues_exactly_one_message_per_person_even_when_run_twice(harvest):
    _draft, summary = _run(harvest, "--notify")

    patients = _breach_rows(Notification.Recipient.PATIENT)
    notified = [row.appointment.patient_id for row in patients]
    reachable = harvest.patients - {harvest.no_contact_patient}
    assert sorted(notified) == sorted(reachable)  # each once; the one without contact left out
    by_patient = {row.appointment.patient_id: row for row in patients}
    assert by_patient[harvest.sms_patient].channel == Notification.Channel.SMS
    assert {row.channel for pk, row in by_patient.items() if pk != harvest.sms_patient} == {
        Notification.Channel.EMAIL
    }
    practitioners = _breach_rows(Notification.Recipient.PRACTITIONER)
    assert sorted(row.recipient_user.practitioner.pk for row in practitioners) == sorted(
        harvest.practitioners
    )
    assert "queued 10 patient and 3 practitioner messages (0 already queued)" in summary
    report = BreachReport.objects.get()
    assert report.notified_at is not None
    assert (report.patients_notified, report.practitioners_notified) == (10, 3)

    _draft, summary = _run(harvest, "--notify")

    assert Notification.objects.filter(kind=Notification.Kind.BREACH).count() == 13
    assert "queued 0 patient and 0 practitioner messages (13 already queued)" in summary
    assert BreachReport.objects.count() == 1


def test_messages_are_plain_and_name_no_one_in_subjects(harvest):
    _run(harvest, "--notify")
    identified_row = next(
        row
        for row in _breach_rows(Notification.Recipient.PATIENT)
        if row.appointment.practitioner_id == harvest.identified_practitioner
        and row.channel == Notification.Channel.EMAIL
    )
    doctor_row = _breach_rows(Notification.Recipient.PRACTITIONER)[0]

    patient_message = build_message(identified_row)
    doctor_message = build_message(doctor_row)

    patient = identified_row.appointment.patient
    assert patient_message.to == patient.email
    assert patient_message.subject == "Information importante sur vos données Creneau"
    assert "le nom de la personne reçue et votre numéro de téléphone" in patient_message.body
    assert "/me/access-log/" in patient_message.body
    assert patient.last_name not in patient_message.body
    assert doctor_message.subject == "Incident de sécurité concernant votre agenda Creneau"
    assert "Vos patients concernés :" in doctor_message.body
    for appointment in harvest.read:
        assert appointment.patient.last_name not in doctor_message.body
        assert appointment.patient.last_name not in doctor_message.subject


def test_pseudonymous_patient_is_told_their_name_was_not_seen(harvest):
    _run(harvest, "--notify")
    row = next(
        row
        for row in _breach_rows(Notification.Recipient.PATIENT)
        if row.appointment.patient_id not in harvest.identified
    )
    row.appointment.patient.user.language = "en"
    row.appointment.patient.user.save(update_fields=["language"])

    message = build_message(row)

    assert message.subject == "Important information about your Creneau data"
    assert "an anonymous identifier (not your name)" in message.body


def test_revoke_cuts_the_integration_off_in_the_same_run(harvest):
    draft, summary = _run(harvest, "--revoke", "--notify")

    harvest.integration.refresh_from_db()
    assert harvest.integration.status == Integration.Status.REVOKED
    assert not Grant.objects.filter(integration=harvest.integration, revoked_at__isnull=True)
    assert "integration revoked" in summary
    assert "Integration revoked on" in draft
    assert BreachReport.objects.get().revoked_at is not None
    row = _breach_rows(Notification.Recipient.PATIENT)[0]
    assert row.context["access_cut"] is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--integration", "999999", "--since", "2026-05-01", "--until", "2026-05-02"], "no integ"),
        (["--integration", "1", "--since", "yesterday", "--until", "2026-05-02"], "ISO 8601"),
        (["--integration", "1", "--since", "2026-05-02", "--until", "2026-05-01"], "before"),
        (["--integration", "1", "--since", "2026-13-45", "--until", "2026-05-01"], "ISO 8601"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_one_line_error(arguments, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("breach_report", *arguments)

    assert "\n" not in str(error.value)


# --- The admin page ------------------------------------------------------------------------


def _query(harvest: Harvest) -> dict[str, str]:
    return {
        "integration": str(harvest.integration.pk),
        "since": "2026-05-01T02:00",  # Paris time: 00:00 UTC
        "until": "2026-05-02T02:00",
    }


@pytest.fixture
def admin_client(client, otp_login):
    otp_login(client, UserFactory(role=Role.ADMIN))
    return client


def test_admin_page_previews_counts_and_draft_without_filing(harvest, admin_client):
    response = admin_client.get("/audit/breach/", _query(harvest))

    assert response.status_code == 200
    html = response.content.decode()
    assert "preview, not filed" in html
    assert "Patients (data subjects): 11, of whom 7" in html
    assert BreachReport.objects.count() == 0


def test_admin_page_downloads_the_draft(harvest, admin_client):
    response = admin_client.get("/audit/breach/", {**_query(harvest), "download": "1"})

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content.decode().startswith("# Personal data breach notification")


def test_admin_page_notifies_only_with_confirmation(harvest, admin_client):
    unconfirmed = admin_client.post("/audit/breach/", {**_query(harvest), "notify": "on"})

    assert unconfirmed.status_code == 400
    assert not Notification.objects.filter(kind=Notification.Kind.BREACH).exists()

    confirmed = admin_client.post(
        "/audit/breach/", {**_query(harvest), "notify": "on", "confirm": "on"}
    )

    assert confirmed.status_code == 200
    assert Notification.objects.filter(kind=Notification.Kind.BREACH).count() == 13
    assert BreachReport.objects.get().notified_at is not None


@pytest.mark.parametrize("role", [Role.PATIENT, Role.PRACTITIONER])
def test_breach_page_is_not_found_for_non_admins(harvest, client, otp_login, role):
    otp_login(client, UserFactory(role=role))

    response = client.get("/audit/breach/", _query(harvest))

    assert response.status_code == 404


def test_breach_page_asks_an_unverified_admin_for_the_second_factor(harvest, client):
    client.force_login(UserFactory(role=Role.ADMIN))

    response = client.get("/audit/breach/", _query(harvest))

    assert response.status_code == 302
