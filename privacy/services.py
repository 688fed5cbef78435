"""Breach response (GDPR articles 33 and 34): what an integration read, from the audit log, and
what to do about it.

`analyze_breach` reads the access log of one integration over a window and works out who and
what was exposed; `file_breach_report` keeps the report, can revoke the integration and queue the
article 34 messages (once per person and report), and writes the article 33 draft
(privacy.draft). Both are used by `manage.py breach_report` and the admin page /audit/breach/.

What counts as exposed: every access event of the integration in the window that was not a
refusal (reads, lists, searches and exports, but also creates, cancellations and other writes,
since the FHIR API answers each of them with the appointment). Which data: the FHIR API shows an
appointment's patient as a pseudonym, unless the practitioner granted `system/Patient.read`, with
which it also shows the name of the person seen and the booking patient's phone
(integrations/fhir/resources.py). The scopes are those of the practitioner's grants in force at
any moment of the window: an upper bound (a token may have carried fewer), the safe side for a
breach notification. A practitioner read without any such grant is counted as fully exposed.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AccessEvent, Action, ActorKind
from audit.services import AppointmentRef, record_access
from booking.models import Appointment
from integrations.models import Grant, Integration
from integrations.scopes import ALL_SCOPES, PATIENT_READ
from integrations.services import revoke_integration
from notifications.models import Notification
from notifications.services import breach_patient_message, breach_practitioner_message, queue
from practitioners.models import Practitioner
from privacy.models import BreachReport

WRITE_ACTIONS = frozenset(
    {Action.CREATE, Action.UPDATE, Action.CANCEL, Action.RESCHEDULE, Action.STATUS}
)


class BreachInputError(ValueError):
    """A bad integration id or window: one line for the command, a form error on the page."""


@dataclass
class BreachAnalysis:
    integration: Integration
    since: datetime
    until: datetime
    events: int = 0
    denied: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    first_access: datetime | None = None
    last_access: datetime | None = None
    refs: list[AppointmentRef] = field(default_factory=list)
    scopes_by_practitioner: dict[int, frozenset[str]] = field(default_factory=dict)
    relatives: int = 0

    @property
    def patient_ids(self) -> set[int]:
        return {ref.patient_id for ref in self.refs if ref.patient_id is not None}

    @property
    def practitioner_ids(self) -> set[int]:
        return {ref.practitioner_id for ref in self.refs if ref.practitioner_id is not None}

    @property
    def appointments(self) -> int:
        return len({ref.id for ref in self.refs if ref.id is not None})

    def names_exposed_for(self, practitioner_id: int | None) -> bool:
        # No grant found in the window (or no practitioner recorded): assume the worst.
        if practitioner_id is None or practitioner_id not in self.scopes_by_practitioner:
            return True
        return PATIENT_READ in self.scopes_by_practitioner[practitioner_id]

    @property
    def identified_patient_ids(self) -> set[int]:
        return {
            ref.patient_id
            for ref in self.refs
            if ref.patient_id is not None and self.names_exposed_for(ref.practitioner_id)
        }

    @property
    def ungranted_practitioners(self) -> int:
        return len(self.practitioner_ids - set(self.scopes_by_practitioner))

    @property
    def writes(self) -> int:
        return sum(count for action, count in self.by_action.items() if action in WRITE_ACTIONS)


def parse_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    if since is None or until is None:
        raise BreachInputError("--since and --until must be ISO 8601 dates or date-times")
    since, until = (
        moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        for moment in (since, until)
    )
    if since >= until:
        raise BreachInputError("--since must be before --until")
    return since, until


def integration_events(*, integration_id: int, since: datetime, until: datetime) -> QuerySet:
    """Every event of the integration in [since, until), refusals included."""
    return AccessEvent.objects.filter(
        actor_kind=ActorKind.INTEGRATION,
        integration_id=integration_id,
        occurred_at__gte=since,
        occurred_at__lt=until,
    )


def analyze_breach(
    *, actor: Actor, integration_id: int, since: datetime | None, until: datetime | None
) -> BreachAnalysis:
    """What the integration reached in the window, from the access log. Reading the log is an
    access to the appointments it names: recorded for `actor`, like the audit pages."""
    since, until = parse_window(since, until)
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        raise BreachInputError(f"no integration with id {integration_id}")
    events = integration_events(integration_id=integration_id, since=since, until=until)
    exposed = events.exclude(action=Action.DENIED)
    totals = exposed.aggregate(
        events=Count("id"), first=Min("occurred_at"), last=Max("occurred_at")
    )
    analysis = BreachAnalysis(
        integration=integration,
        since=since,
        until=until,
        events=totals["events"],
        denied=events.filter(action=Action.DENIED).count(),
        by_action=dict(
            exposed.order_by()
            .values_list("action")
            .annotate(n=Count("id"))
            .values_list("action", "n")
        ),
        first_access=totals["first"],
        last_access=totals["last"],
        refs=[
            AppointmentRef(id=row[0], patient_id=row[1], practitioner_id=row[2])
            for row in exposed.filter(appointment_id__isnull=False)
            .order_by("appointment_id")
            .values_list("appointment_id", "patient_id", "practitioner_id")
            .distinct()
        ],
    )
    analysis.scopes_by_practitioner = _scopes_in_window(analysis)
    appointment_ids = exposed.filter(appointment_id__isnull=False).values("appointment_id")
    analysis.relatives = (
        Appointment.objects.filter(pk__in=appointment_ids, relative__isnull=False)
        .values("relative_id")
        .distinct()
        .count()
    )
    detail = f"breach report: integration {integration_id}"
    record_access(actor=actor, action=Action.LIST, appointments=analysis.refs, detail=detail)
    return analysis


def _scopes_in_window(analysis: BreachAnalysis) -> dict[int, frozenset[str]]:
    """Per practitioner, every scope of a grant to the integration in force at some moment of
    the window (granted before its end, neither revoked nor expired before its start)."""
    grants = Grant.objects.filter(
        integration_id=analysis.integration.pk,
        practitioner_id__in=analysis.practitioner_ids,
        granted_at__lt=analysis.until,
    ).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=analysis.since),
        Q(expires_at__isnull=True) | Q(expires_at__gt=analysis.since),
    )
    scopes: dict[int, set[str]] = defaultdict(set)
    for practitioner_id, granted in grants.values_list("practitioner_id", "scopes"):
        scopes[practitioner_id].update(scope for scope in granted if scope in ALL_SCOPES)
    return {practitioner_id: frozenset(values) for practitioner_id, values in scopes.items()}


# --- Filing: the report, revocation, article 34 messages ------------------------------------


@dataclass
class Notified:
    patients: int = 0  # messages queued by this run
    practitioners: int = 0
    already: int = 0  # queued by an earlier run of the same report
    unreachable_patients: int = 0  # no address, or the appointment is gone
    unreachable_practitioners: int = 0  # no account to write to


@dataclass
class FiledReport:
    report: BreachReport
    analysis: BreachAnalysis
    draft: str
    revoked: bool = False
    notified: Notified | None = None


def dpo_contact() -> str:
    return str(getattr(settings, "DPO_CONTACT", "") or "")


@transaction.atomic
def file_breach_report(
    *, actor: Actor, analysis: BreachAnalysis, notify: bool = False, revoke: bool = False
) -> FiledReport:
    """Keep the report of `analysis` (one per integration and window), revoke the integration
    and queue the article 34 messages if asked, and write the article 33 draft into it."""
    from privacy.draft import render_draft

    now = timezone.now()
    user_id = actor.user.pk if actor.user is not None else None
    report, _created = BreachReport.objects.select_for_update().get_or_create(
        integration_id=analysis.integration.pk,
        since=analysis.since,
        until=analysis.until,
        defaults={"created_by_id": user_id, "created_at": now},
    )
    filed = FiledReport(report=report, analysis=analysis, draft="")
    if revoke:
        filed.revoked = revoke_integration(
            integration_id=analysis.integration.pk,
            by=actor.user,
            reason=f"breach report #{report.pk}",
        )
        analysis.integration.refresh_from_db()
        report.revoked_at = report.revoked_at or now
    if notify:
        filed.notified = _notify(report, analysis)
        report.notified_at = report.notified_at or now
        report.patients_notified += filed.notified.patients
        report.practitioners_notified += filed.notified.practitioners
    _store_counts(report, analysis, now)
    filed.draft = render_draft(filed)
    report.draft = filed.draft
    report.save()
    return filed


def preview_breach_report(analysis: BreachAnalysis) -> FiledReport:
    """The draft as it would be filed now, without keeping anything: the admin page's preview.
    A report already filed for the window lends its number and what it did."""
    from privacy.draft import render_draft

    now = timezone.now()
    report = BreachReport.objects.filter(
        integration_id=analysis.integration.pk, since=analysis.since, until=analysis.until
    ).first() or BreachReport(
        integration_id=analysis.integration.pk,
        since=analysis.since,
        until=analysis.until,
        created_at=now,
    )
    _store_counts(report, analysis, now)
    filed = FiledReport(report=report, analysis=analysis, draft="")
    filed.draft = render_draft(filed)
    return filed


def _store_counts(report: BreachReport, analysis: BreachAnalysis, now: datetime) -> None:
    report.integration_name = analysis.integration.name[:120]
    report.events = analysis.events
    report.patients = len(analysis.patient_ids)
    report.identified_patients = len(analysis.identified_patient_ids)
    report.appointments = analysis.appointments
    report.practitioners = len(analysis.practitioner_ids)
    report.denied = analysis.denied
    report.first_access = analysis.first_access
    report.last_access = analysis.last_access
    report.computed_at = now


def _message_context(report: BreachReport, analysis: BreachAnalysis) -> dict[str, Any]:
    """What every message of the report shares: dates, names of software, flags. No one's data."""
    tz = timezone.get_default_timezone()
    return {
        "report": report.pk,
        "since": analysis.since.astimezone(tz).date().isoformat(),
        "until": analysis.until.astimezone(tz).date().isoformat(),
        "software": analysis.integration.name,
        "access_cut": not analysis.integration.is_active,
        "contact": dpo_contact(),
    }


def _notify(report: BreachReport, analysis: BreachAnalysis) -> Notified:
    shared = _message_context(report, analysis)
    rows: list[Notification] = []
    outcome = Notified()
    per_patient: dict[int, int] = defaultdict(int)
    per_practitioner: dict[int, set[int]] = defaultdict(set)
    for ref in analysis.refs:
        if ref.patient_id is not None:
            per_patient[ref.patient_id] += 1
            if ref.practitioner_id is not None:
                per_practitioner[ref.practitioner_id].add(ref.patient_id)
    # One appointment of each patient among those read: delivery reaches them through it.
    appointment_ids = [ref.id for ref in analysis.refs if ref.id is not None]
    first_of = dict(
        Appointment.objects.filter(pk__in=appointment_ids)
        .order_by()
        .values_list("patient_id")
        .annotate(first=Min("pk"))
    )
    carriers = Appointment.objects.select_related("patient__user").in_bulk(first_of.values())
    details_path = reverse("access-log")
    identified = analysis.identified_patient_ids
    for patient_id, count in sorted(per_patient.items()):
        appointment = carriers.get(first_of.get(patient_id, 0))
        row = None
        if appointment is not None:
            context = {
                **shared,
                "appointments": count,
                "names_exposed": patient_id in identified,
                "details_path": details_path,
            }
            row = breach_patient_message(
                report_id=report.pk, appointment=appointment, context=context
            )
        if row is None:
            outcome.unreachable_patients += 1
        else:
            rows.append(row)
    rows += _practitioner_rows(report, analysis, per_practitioner, shared, outcome)
    existing = set(
        Notification.objects.filter(
            idempotency_key__in=[row.idempotency_key for row in rows]
        ).values_list("idempotency_key", flat=True)
    )
    new = [row for row in rows if row.idempotency_key not in existing]
    queue(new)
    outcome.already = len(rows) - len(new)
    outcome.patients = sum(row.recipient == Notification.Recipient.PATIENT for row in new)
    outcome.practitioners = len(new) - outcome.patients
    return outcome


def _practitioner_rows(
    report: BreachReport,
    analysis: BreachAnalysis,
    per_practitioner: dict[int, set[int]],
    shared: dict[str, Any],
    outcome: Notified,
) -> list[Notification]:
    appointments: dict[int, int] = defaultdict(int)
    for ref in analysis.refs:
        if ref.practitioner_id is not None:
            appointments[ref.practitioner_id] += 1
    practitioners = Practitioner.objects.select_related("user").in_bulk(list(per_practitioner))
    rows = []
    details_path = reverse("agenda-integrations")
    for practitioner_id in sorted(per_practitioner):
        practitioner = practitioners.get(practitioner_id)
        user = practitioner.user if practitioner is not None else None
        if user is None or not user.is_active:
            outcome.unreachable_practitioners += 1
            continue
        context = {
            **shared,
            "patients": len(per_practitioner[practitioner_id]),
            "appointments": appointments[practitioner_id],
            "names_exposed": analysis.names_exposed_for(practitioner_id),
            "details_path": details_path,
        }
        rows.append(
            breach_practitioner_message(
                report_id=report.pk, practitioner_id=practitioner_id, user=user, context=context
            )
        )
    return rows
