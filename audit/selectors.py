"""Reads of the access log for its reviewers: admins on /audit/ (this module) and patients on
/me/access-log/ (audit.access_log).

Reading the log is itself an access to appointment data (each event names a patient), so every
admin page records what it displayed with `record_review`: one bulk insert of the appointment
refs shown, on the ADMIN channel. Every page costs a fixed number of queries, whatever the
number of events it shows.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncHour

from audit.actors import Actor
from audit.chain import MAC_FIELDS
from audit.models import AccessEvent, Action, AuditSeal
from audit.services import BIGINT_MAX, AppointmentRef, record_access

PAGE_SIZE = 50
EXPORT_CAP = 100_000
TOP_ACTORS_WINDOW = timedelta(hours=24)
CHART_DAYS = 7
SAME_REQUEST_SHOWN = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(\d{1,20})-(\d{1,19})$")
# Every column of an event, the id and time first, then what its mac covers (audit.chain).
EXPORT_COLUMNS = ("id", "occurred_at", *MAC_FIELDS)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts (keyset pagination on occurred_at, id, newest first): no
    OFFSET scan, no COUNT, and a page does not shift when new events arrive."""

    occurred_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{(self.occurred_at - EPOCH) // timedelta(microseconds=1)}-{self.id}"

    @classmethod
    def parse(cls, value: str) -> "Cursor | None":
        match = _CURSOR.match(value)
        if match is None or int(match.group(2)) > BIGINT_MAX:
            return None
        try:
            moment = EPOCH + timedelta(microseconds=int(match.group(1)))
        except OverflowError:
            return None
        return cls(occurred_at=moment, id=int(match.group(2)))

    @classmethod
    def after(cls, event: AccessEvent) -> "Cursor":
        return cls(occurred_at=event.occurred_at, id=event.pk)


@dataclass(frozen=True)
class Page:
    events: list[AccessEvent]
    next_cursor: Cursor | None


def page_of(events: QuerySet[AccessEvent], *, cursor: Cursor | None, size: int) -> Page:
    """One page of `events`, newest first, in one query."""
    if cursor is not None:
        events = events.filter(
            Q(occurred_at__lt=cursor.occurred_at)
            | Q(occurred_at=cursor.occurred_at, id__lt=cursor.id)
        )
    rows = list(events.order_by("-occurred_at", "-id")[: size + 1])
    shown = rows[:size]
    return Page(events=shown, next_cursor=Cursor.after(shown[-1]) if len(rows) > size else None)


# --- Admin review ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    start: datetime
    end: datetime  # exclusive
    actor_user_id: int | None = None
    patient_id: int | None = None
    practitioner_id: int | None = None
    integration_id: int | None = None
    action: str = ""
    channel: str = ""

    def describe(self) -> str:
        """The filter for the audit log itself: ids, codes and instants only."""
        parts = [f"from={_instant(self.start)}", f"to={_instant(self.end)}"]
        named = (
            ("actor", self.actor_user_id),
            ("patient", self.patient_id),
            ("practitioner", self.practitioner_id),
            ("integration", self.integration_id),
            ("action", self.action),
            ("channel", self.channel),
        )
        return " ".join(parts + [f"{name}={value}" for name, value in named if value])


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def events_matching(event_filter: EventFilter) -> QuerySet[AccessEvent]:
    f = event_filter
    events = AccessEvent.objects.filter(occurred_at__gte=f.start, occurred_at__lt=f.end)
    exact = {
        "actor_user_id": f.actor_user_id,
        "patient_id": f.patient_id,
        "practitioner_id": f.practitioner_id,
        "integration_id": f.integration_id,
        "action": f.action or None,
        "channel": f.channel or None,
    }
    return events.filter(**{field: value for field, value in exact.items() if value is not None})


def event_page(*, event_filter: EventFilter, cursor: Cursor | None, size: int = PAGE_SIZE) -> Page:
    return page_of(events_matching(event_filter), cursor=cursor, size=size)


def find_event(*, event_id: int) -> AccessEvent | None:
    if not 0 < event_id <= BIGINT_MAX:
        return None
    return AccessEvent.objects.filter(pk=event_id).first()


def seal_of(event: AccessEvent) -> AuditSeal | None:
    """The event's place in its month's hash chain; None until the sealer has chained it."""
    return AuditSeal.objects.filter(event_id=event.pk).first()


def same_request(event: AccessEvent) -> list[AccessEvent]:
    """Other events written by the request that wrote `event` (a list shows many)."""
    if not event.request_id:
        return []
    # A request's events lie within minutes of one another: the time index finds them, so the
    # table needs no index on request ids (bench/audit_overhead.py: each index costs every read).
    around = timedelta(minutes=10)
    others = AccessEvent.objects.filter(
        request_id=event.request_id,
        occurred_at__gte=event.occurred_at - around,
        occurred_at__lte=event.occurred_at + around,
    ).exclude(pk=event.pk)
    return list(others.order_by("occurred_at", "id")[:SAME_REQUEST_SHOWN])


def export_rows(*, actor: Actor, event_filter: EventFilter) -> Iterator[tuple[Any, ...]]:
    """The events matching the filter, oldest first, capped at EXPORT_CAP, as tuples of
    EXPORT_COLUMNS; the export is recorded before the first row is read.

    One EXPORT event records the filter (with its end pinned to the second) and the row count,
    rather than one event per exported row: the log is append-only, so the filter identifies
    the exported rows, and an export of 100,000 rows does not write 100,000 more. The patient
    or practitioner the filter names is set on the event, so their own access log shows it.
    """
    events = events_matching(event_filter).order_by("occurred_at", "id")[:EXPORT_CAP]
    count = events.count()
    ref = AppointmentRef(
        id=None, patient_id=event_filter.patient_id, practitioner_id=event_filter.practitioner_id
    )
    detail = f"audit log export: {count} rows; {event_filter.describe()}"
    record_access(actor=actor, action=Action.EXPORT, appointments=[ref], detail=detail)
    return events.values_list(*EXPORT_COLUMNS).iterator(chunk_size=2_000)


def record_review(
    *, actor: Actor, page: str, events: Iterable[AccessEvent] = (), action: str = Action.LIST
) -> None:
    """Record that `actor` read the access log: the appointment refs of the events shown, each
    once, in one insert (one event without appointment when none was shown)."""
    refs = dict.fromkeys(
        AppointmentRef(
            id=e.appointment_id, patient_id=e.patient_id, practitioner_id=e.practitioner_id
        )
        for e in events
        if e.appointment_id is not None or e.patient_id is not None
    )
    record_access(actor=actor, action=action, appointments=list(refs), detail=f"audit log: {page}")


# --- Who touched the most patients ----------------------------------------------------------------


@dataclass(frozen=True)
class TopActor:
    kind: str
    user_id: int | None
    role: str
    integration_id: int | None
    label: str
    patients: int
    events: int


def top_actors(*, now: datetime, limit: int = 20) -> list[TopActor]:
    """The actors (users, integrations, tasks) who touched the most distinct patients in the last
    24 hours, most first: one GROUP BY query."""
    rows = (
        AccessEvent.objects.filter(
            occurred_at__gt=now - TOP_ACTORS_WINDOW, occurred_at__lte=now, patient_id__isnull=False
        )
        .values("actor_kind", "actor_user_id", "integration_id", "actor_label")
        .annotate(patients=Count("patient_id", distinct=True), events=Count("id"))
        .annotate(role=Max("actor_role"))
        .order_by("-patients", "-events", "actor_user_id", "integration_id")[:limit]
    )
    return [
        TopActor(
            kind=row["actor_kind"],
            user_id=row["actor_user_id"],
            role=row["role"],
            integration_id=row["integration_id"],
            label=row["actor_label"],
            patients=row["patients"],
            events=row["events"],
        )
        for row in rows
    ]


# --- Accesses per hour ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HourlyCounts:
    hours: list[datetime]  # the start of each hour, UTC, oldest first
    by_channel: dict[str, list[int]]  # one count per hour; channels without events are absent


def hourly_counts(*, now: datetime, days: int = CHART_DAYS) -> HourlyCounts:
    """Accesses per hour and channel over the `days` days up to the end of the current hour, in
    one GROUP BY query. Hours are cut in UTC: every hour of a DST change is its own bucket."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - timedelta(hours=n) for n in range(days * 24, 0, -1)]
    position = {hour: index for index, hour in enumerate(hours)}
    rows = (
        AccessEvent.objects.filter(occurred_at__gte=hours[0], occurred_at__lt=end)
        .annotate(hour=TruncHour("occurred_at", tzinfo=UTC))
        .values("hour", "channel")
        .annotate(count=Count("id"))
        .order_by()
    )
    by_channel: dict[str, list[int]] = {}
    for row in rows:
        counts = by_channel.setdefault(row["channel"], [0] * len(hours))
        counts[position[row["hour"].astimezone(UTC)]] += row["count"]
    return HourlyCounts(hours=hours, by_channel=by_channel)
