"""The GDPR article 33 notification draft of a breach report, as Markdown.

Counts, dates and the integration's name only: the draft goes to the supervisory authority and
into tickets and emails, so it names no patient and no practitioner. The DPO reviews and
completes it (the bracketed parts) before it is filed.
"""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from audit.models import Alert
from integrations.models import Integration
from privacy.services import FiledReport, dpo_contact

NOTIFY_WITHIN = timedelta(hours=72)  # article 33(1)

SECTIONS = (
    "## 1. Nature of the breach",
    "## 2. Timeline",
    "## 3. Categories of personal data",
    "## 4. Data subjects and records concerned",
    "## 5. Likely consequences",
    "## 6. Measures taken and proposed",
    "## 7. Communication to data subjects (article 34)",
    "## 8. Contact",
)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "none"
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} ({local.tzinfo}), {moment.astimezone(UTC):%H:%M} UTC"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_draft(filed: FiledReport) -> str:
    analysis, report = filed.analysis, filed.report
    number = f"report #{report.pk}" if report.pk else "preview, not filed"
    parts = [
        f"# Personal data breach notification (GDPR article 33): draft, {number}",
        "",
        f"Prepared {_when(report.computed_at)} by `breach_report` from the Creneau access log. "
        "To be reviewed and completed by the DPO before filing with the CNIL.",
        "",
        *_nature(filed),
        *_timeline(filed),
        *_categories(filed),
        *_numbers(filed),
        *_consequences(filed),
        *_measures(filed),
        *_communication(filed),
        SECTIONS[7],
        "",
        f"Data protection officer: {dpo_contact() or '[name, email and phone of the DPO]'}",
        f"Software vendor: {analysis.integration.vendor or '[vendor]'}, "
        f"contact {analysis.integration.contact_email or '[vendor contact]'}",
        "",
    ]
    return "\n".join(parts)


def _nature(filed: FiledReport) -> list[str]:
    analysis = filed.analysis
    actions = ", ".join(f"{count} {action}" for action, count in sorted(analysis.by_action.items()))
    lines = [
        SECTIONS[0],
        "",
        "Confidentiality breach. The third-party practitioner software "
        f'"{analysis.integration.name}" (integration #{analysis.integration.pk}), '
        "connected to Creneau's FHIR API with OAuth2 client credentials on the consent of the "
        "practitioners who granted it access, read "
        "appointment data beyond its legitimate use (suspected harvesting).",
        "",
        f"Accesses in the window: {analysis.events} ({actions or 'none'}); "
        f"{_plural(analysis.denied, 'further attempt')} refused by Creneau.",
    ]
    if analysis.writes:
        lines.append(
            f"{_plural(analysis.writes, 'write')} (bookings, changes, cancellations) were also "
            "made: check them for an integrity breach."
        )
    return [*lines, ""]


def _timeline(filed: FiledReport) -> list[str]:
    analysis, report = filed.analysis, filed.report
    alert = (
        Alert.objects.filter(integration_id=analysis.integration.pk, first_seen__gte=analysis.since)
        .order_by("first_seen")
        .first()
    )
    return [
        SECTIONS[1],
        "",
        f"- Window examined: {_when(analysis.since)} to {_when(analysis.until)} (end excluded)",
        f"- First access in the window: {_when(analysis.first_access)}",
        f"- Last access in the window: {_when(analysis.last_access)}",
        f"- First alert on this integration: {_when(alert.first_seen) if alert else 'none'}",
        f"- Report opened: {_when(report.created_at)}; notify the CNIL by "
        f"{_when(report.created_at + NOTIFY_WITHIN)} at the latest (72 hours after becoming "
        "aware) [adjust to the moment of awareness]",
        "",
    ]


def _categories(filed: FiledReport) -> list[str]:
    analysis = filed.analysis
    identified = len(analysis.identified_patient_ids)
    lines = [
        SECTIONS[2],
        "",
        "- Appointment metadata, for every appointment read: date and time, duration, status, "
        "practitioner (name, specialty, practice), visit reason.",
        "- A pseudonymous patient reference, specific to this integration.",
    ]
    if identified:
        lines.append(
            "- Identification and contact data, where the practitioner had granted "
            "`system/Patient.read`: the name of the person seen (the patient or the relative "
            "they booked for) and the booking patient's phone number."
        )
    lines += [
        "",
        "No health data beyond appointment metadata was exposed: Creneau holds no medical "
        "record, diagnosis or clinical note, and the API never returns email addresses, postal "
        "addresses, dates of birth or passwords. The practitioner's specialty and the visit "
        "reason can nonetheless suggest a health condition: treat them as health-related data "
        "(article 9) when assessing the risk.",
        "",
    ]
    if analysis.ungranted_practitioners:
        lines += [
            "Note: no grant in force was found for "
            f"{_plural(analysis.ungranted_practitioners, 'practitioner')} "
            "whose appointments were read; their patients are counted as identified.",
            "",
        ]
    return lines


def _numbers(filed: FiledReport) -> list[str]:
    analysis = filed.analysis
    patients = len(analysis.patient_ids)
    identified = len(analysis.identified_patient_ids)
    return [
        SECTIONS[3],
        "",
        f"- Patients (data subjects): {patients}, of whom {identified} with name and phone "
        f"number exposed and {patients - identified} with a pseudonym only",
        f"- Relatives (appointments booked for a family member): {analysis.relatives}",
        f"- Practitioners whose agendas were read: {len(analysis.practitioner_ids)}",
        f"- Appointments (records): {analysis.appointments}",
        f"- Access events: {analysis.events}",
        "",
    ]


def _consequences(filed: FiledReport) -> list[str]:
    identified = len(filed.analysis.identified_patient_ids)
    lines = [SECTIONS[4], ""]
    if identified:
        lines += [
            "Risk: high. With names, phone numbers and real appointments, the data lends itself "
            "to convincing fraud (calls or text messages posing as the practice), and reveals "
            "that a person consults a given practitioner or specialty, which may cause distress, "
            "embarrassment or discrimination. Article 34 communication to the data subjects is "
            "required.",
        ]
    else:
        lines += [
            "Risk: limited. Without names or contact data, re-identification requires combining "
            "the pseudonyms and appointment times with other sources; the appointment patterns "
            "of a practice were nonetheless disclosed.",
        ]
    return [*lines, ""]


def _measures(filed: FiledReport) -> list[str]:
    integration = filed.analysis.integration
    if integration.status == Integration.Status.ACTIVE:
        status = "still ACTIVE: suspend or revoke it now"
    else:
        status = f"{integration.status} on {_when(integration.status_changed_at)}"
    return [
        SECTIONS[5],
        "",
        "Taken:",
        f"- Integration {status}; suspending or revoking it deletes all its OAuth2 tokens at "
        "once, and revoking it withdraws every practitioner's grant.",
        f"- Breach recorded (report #{filed.report.pk or '[not yet filed]'}); the access log "
        "is hash-chained and append-only: run `verify_audit_log` to attest the evidence.",
        "",
        "Proposed:",
        "- Do not reinstate the integration; if the vendor is to reconnect, issue new client "
        "credentials (rotate the secret) after its investigation.",
        "- Rotate `FHIR_PSEUDONYM_KEY` if the harvested pseudonyms could be linked to future "
        "reads (this changes every integration's pseudonyms: coordinate with vendors).",
        "- Keep monitoring: harvest detection and quotas alert on every integration; review "
        "the quotas (patients per hour) of the other integrations.",
        "- Ask the vendor for its incident report and for the deletion of the data obtained.",
        "",
    ]


def _communication(filed: FiledReport) -> list[str]:
    report, notified = filed.report, filed.notified
    lines = [SECTIONS[6], ""]
    if report.notified_at is None:
        lines.append(
            "Not yet sent. `breach_report --notify` queues one plain-language message (French "
            "or English) to each patient concerned (email, or SMS without one) and to each "
            "practitioner concerned (email, with the number of their patients)."
        )
    else:
        lines.append(
            f"Queued on {_when(report.notified_at)}: {report.patients_notified} patients and "
            f"{report.practitioners_notified} practitioners, one message each."
        )
    if notified is not None and (
        notified.unreachable_patients or notified.unreachable_practitioners
    ):
        lines.append(
            f"Unreachable: {notified.unreachable_patients} patients (no email or phone, or "
            f"appointment deleted), {notified.unreachable_practitioners} practitioners (no "
            "account): consider a public communication (article 34(3)(c))."
        )
    return [*lines, ""]
