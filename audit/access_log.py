"""A patient's access log (/me/access-log/): who touched their appointments, in plain language.

The patient sees every event that names them (their relatives' appointments are booked under
them, so those too) and the refusals of others on their appointments (a refusal knows only the
appointment id). Never an IP, a user agent, or another patient. A page costs at most four
queries, whatever its length: the patient's events, the refusals, the practitioners' names, the
secretaries' agendas.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Role
from audit.models import AccessEvent, Action, ActorKind, Channel
from audit.selectors import PAGE_SIZE, Cursor, page_of
from booking.models import Appointment
from patients.models import Patient
from practitioners.models import Practitioner, StaffAccess

# Whole sentences, so that each language can make its verb agree with its subject.
# %(who)s: who acted ("the secretary of Dr X"); %(practitioner)s: whose appointment ("Dr X").
OTHERS_PHRASES: dict[str, Promise] = {
    Action.VIEW: gettext_lazy("%(who)s viewed an appointment with %(practitioner)s"),
    Action.LIST: gettext_lazy("%(who)s saw an appointment with %(practitioner)s in a list"),
    Action.SEARCH: gettext_lazy("%(who)s found an appointment with %(practitioner)s in a search"),
    Action.CREATE: gettext_lazy("%(who)s booked an appointment with %(practitioner)s"),
    Action.UPDATE: gettext_lazy("%(who)s changed an appointment with %(practitioner)s"),
    Action.CANCEL: gettext_lazy("%(who)s cancelled an appointment with %(practitioner)s"),
    Action.RESCHEDULE: gettext_lazy("%(who)s moved an appointment with %(practitioner)s"),
    Action.STATUS: gettext_lazy(
        "%(who)s updated the status of an appointment with %(practitioner)s"
    ),
    Action.EXPORT: gettext_lazy("%(who)s exported an appointment with %(practitioner)s"),
    Action.DENIED: gettext_lazy(
        "%(who)s tried to open an appointment with %(practitioner)s and was refused"
    ),
}
# The same when the event names the patient but no appointment: their file at a practice.
OTHERS_FILE_PHRASES: dict[str, Promise] = {
    Action.VIEW: gettext_lazy("%(who)s viewed your details as a patient of %(practitioner)s"),
    Action.LIST: gettext_lazy("%(who)s saw your name among the patients of %(practitioner)s"),
    Action.SEARCH: gettext_lazy(
        "%(who)s found you in a search among the patients of %(practitioner)s"
    ),
}
# What the patient did themself.
OWN_PHRASES: dict[str, Promise] = {
    Action.VIEW: gettext_lazy("You viewed an appointment with %(practitioner)s"),
    Action.LIST: gettext_lazy("You saw an appointment with %(practitioner)s in a list"),
    Action.SEARCH: gettext_lazy("You found an appointment with %(practitioner)s in a search"),
    Action.CREATE: gettext_lazy("You booked an appointment with %(practitioner)s"),
    Action.UPDATE: gettext_lazy("You changed an appointment with %(practitioner)s"),
    Action.CANCEL: gettext_lazy("You cancelled an appointment with %(practitioner)s"),
    Action.RESCHEDULE: gettext_lazy("You moved an appointment with %(practitioner)s"),
    Action.EXPORT: gettext_lazy("You exported an appointment with %(practitioner)s"),
    Action.DENIED: gettext_lazy("You were refused an action on one of your appointments"),
}
OWN_FALLBACK = gettext_lazy("You accessed an appointment with %(practitioner)s")
OTHERS_FALLBACK = gettext_lazy("%(who)s accessed an appointment with %(practitioner)s")
REFUSED_UNKNOWN = gettext_lazy("%(who)s tried to open one of your appointments and was refused")
AUDIT_READ = gettext_lazy("%(who)s checked the record of who accessed your appointments")
AUDIT_EXPORT = gettext_lazy("%(who)s exported the record of who accessed your appointments")
# System actors are named after their task: "notifications.deliver", "waitlist.offer_...".
SYSTEM_LABELS: dict[str, Promise] = {
    "notifications.": gettext_lazy("Creneau (automatic reminders and messages)"),
    "waitlist.": gettext_lazy("Creneau (waiting list)"),
}


@dataclass(frozen=True)
class AccessLogEntry:
    occurred_at: datetime
    text: str
    refused: bool


@dataclass(frozen=True)
class AccessLogDay:
    day: date
    entries: list[AccessLogEntry] = field(default_factory=list)


@dataclass(frozen=True)
class AccessLogPage:
    days: list[AccessLogDay]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class Names:
    """Practitioners' display names, by practitioner id and by user id; and which secretaries
    work on which of their agendas (user id, practitioner id)."""

    by_id: dict[int, str]
    by_user: dict[int, str]
    agendas: frozenset[tuple[int, int]] = frozenset()

    def of(self, practitioner_id: int | None) -> str | None:
        return self.by_id.get(practitioner_id) if practitioner_id is not None else None


def access_log_of(
    *, patient: Patient, cursor: Cursor | None, size: int = PAGE_SIZE
) -> AccessLogPage:
    """The patient's access log, newest first, grouped by local day."""
    # Two indexed queries merged here rather than one OR, which would walk the whole time index.
    own = page_of(AccessEvent.objects.filter(patient_id=patient.pk), cursor=cursor, size=size)
    refusals = page_of(
        AccessEvent.objects.filter(
            action=Action.DENIED,
            patient_id__isnull=True,
            appointment_id__in=Appointment.objects.filter(patient_id=patient.pk).values("id"),
        ),
        cursor=cursor,
        size=size,
    )
    merged = sorted(
        [*own.events, *refusals.events], key=lambda e: (e.occurred_at, e.pk), reverse=True
    )
    more = len(merged) > size or own.next_cursor is not None or refusals.next_cursor is not None
    shown = merged[:size]
    names = practitioner_names(shown, agendas=secretaries_agendas(shown))
    entries = [entry_for(event, patient=patient, names=names) for event in shown]
    return AccessLogPage(
        days=by_day(entries), next_cursor=Cursor.after(shown[-1]) if more and shown else None
    )


def secretaries_agendas(events: list[AccessEvent]) -> frozenset[tuple[int, int]]:
    """Which of the secretaries in `events` work on the agenda they acted on, in one query.

    A secretary's event names the practitioner whose appointment was touched, whether or not
    they work for them: only one who does is called "the secretary of Dr X".
    """
    pairs = {
        (e.actor_user_id, e.on_behalf_of_id)
        for e in events
        if e.actor_role == Role.SECRETARY and e.actor_user_id and e.on_behalf_of_id
    }
    if not pairs:
        return frozenset()
    access = StaffAccess.objects.filter(
        user_id__in={user for user, _ in pairs}, practitioner_id__in={p for _, p in pairs}
    )
    return frozenset(access.values_list("user_id", "practitioner_id")) & pairs


def practitioner_names(
    events: list[AccessEvent], *, agendas: frozenset[tuple[int, int]] = frozenset()
) -> Names:
    """The names of every practitioner the events mention, in one query."""
    ids = {e.practitioner_id for e in events} | {e.on_behalf_of_id for e in events}
    ids.discard(None)
    users = {e.actor_user_id for e in events if e.actor_role == Role.PRACTITIONER}
    users.discard(None)
    if not ids and not users:
        return Names(by_id={}, by_user={}, agendas=agendas)
    rows = Practitioner.objects.filter(Q(pk__in=ids) | Q(user_id__in=users)).values_list(
        "pk", "user_id", "first_name", "last_name"
    )
    by_id: dict[int, str] = {}
    by_user: dict[int, str] = {}
    for pk, user_id, first_name, last_name in rows:
        by_id[pk] = _("Dr %(name)s") % {"name": f"{first_name} {last_name}"}
        if user_id is not None:
            by_user[user_id] = by_id[pk]
    return Names(by_id=by_id, by_user=by_user, agendas=agendas)


def entry_for(event: AccessEvent, *, patient: Patient, names: Names) -> AccessLogEntry:
    return AccessLogEntry(
        occurred_at=event.occurred_at,
        text=capfirst(describe(event, patient=patient, names=names)),
        refused=event.action == Action.DENIED,
    )


def describe(event: AccessEvent, *, patient: Patient, names: Names) -> str:
    """The event as one sentence: who did what to which practitioner's appointment."""
    practitioner = names.of(event.practitioner_id)
    if event.actor_user_id is not None and event.actor_user_id == patient.user_id:
        phrase = OWN_PHRASES.get(event.action, OWN_FALLBACK)
    elif event.channel == Channel.ADMIN and event.detail.startswith("audit log"):
        phrase = AUDIT_EXPORT if event.action == Action.EXPORT else AUDIT_READ
    elif event.action == Action.DENIED and practitioner is None:
        phrase = REFUSED_UNKNOWN
    elif event.appointment_id is None and event.action in OTHERS_FILE_PHRASES:
        phrase = OTHERS_FILE_PHRASES[event.action]
    else:
        phrase = OTHERS_PHRASES.get(event.action, OTHERS_FALLBACK)
    return str(phrase) % {
        "who": describe_actor(event, names=names),
        "practitioner": practitioner or _("a practitioner"),
    }


def describe_actor(event: AccessEvent, *, names: Names) -> str:
    """Who acted, as the patient knows them (never the patient themself: see OWN_PHRASES)."""
    if event.actor_kind == ActorKind.SYSTEM:
        return system_label(event.actor_label)
    if event.integration_id is not None:
        return integration_label(event.integration_id, acting_for=names.of(event.on_behalf_of_id))
    if event.actor_role == Role.ADMIN:
        return _("Creneau support")
    if event.actor_role == Role.PRACTITIONER:
        return names.by_user.get(event.actor_user_id or 0) or _("a practitioner")
    if event.actor_role == Role.SECRETARY:
        doctor = names.of(event.on_behalf_of_id)
        if doctor is None or (event.actor_user_id, event.on_behalf_of_id) not in names.agendas:
            return _("a practice secretary")
        return _("the secretary of %(practitioner)s") % {"practitioner": doctor}
    if event.actor_role == Role.PATIENT:
        return _("another Creneau user")
    return _("someone who was not logged in")


def integration_label(integration_id: int, *, acting_for: str | None) -> str:
    """How a patient sees a connected app. The one place to name it: there is no Integration
    model yet, so the app is known by its number; the integrations issue swaps in its name
    ('the app "Y" connected by Dr X')."""
    if acting_for is None:
        return _("a connected app (#%(id)s)") % {"id": integration_id}
    return _("a connected app (#%(id)s) acting for %(practitioner)s") % {
        "id": integration_id,
        "practitioner": acting_for,
    }


def system_label(task_name: str) -> str:
    for prefix, label in SYSTEM_LABELS.items():
        if task_name.startswith(prefix):
            return str(label)
    return _("Creneau (automatic processing)")


def by_day(entries: list[AccessLogEntry]) -> list[AccessLogDay]:
    """Consecutive entries grouped by their day in the current time zone."""
    days: list[AccessLogDay] = []
    for entry in entries:
        day = timezone.localdate(entry.occurred_at)
        if not days or days[-1].day != day:
            days.append(AccessLogDay(day=day))
        days[-1].entries.append(entry)
    return days
