"""The agenda grid: one column per practitioner and day, on a shared wall-clock axis.

Presentation only. Appointments come from booking.selectors (scoped by actor and recorded);
opening hours and absences carry no personal data and are read here, one query each, whatever
the number of columns. Everything a column shows is positioned by its local wall-clock time in
the practice's time zone, as the practice reads its day. Positions are CSS percentages built
here as strings: the template's number localization would write "12,5%" in French.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import QueryDict
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from booking.models import ALLOWED_TRANSITIONS, Appointment
from booking.selectors import Agenda
from practitioners.models import Absence, Practitioner, VisitReason, WeeklyHours

DAY, WEEK = "day", "week"
WEEK_DAYS = 7
MAX_SIDE_BY_SIDE = 12  # agendas shown at once: beyond, columns get too narrow to read
FARTHEST_DAYS = 3 * 366  # dates beyond this many days from today fall back to today
DAY_MINUTES = 24 * 60
DEFAULT_HOURS = (8 * 60, 19 * 60)  # the axis of a day with nothing open nor booked

STATUS_ACTIONS: dict[str, Promise] = {
    Appointment.Status.ARRIVED: _("Arrived"),
    Appointment.Status.DONE: _("Done"),
    Appointment.Status.NO_SHOW: _("No-show"),
    Appointment.Status.BOOKED: _("Back to booked"),
}


# --- What is asked for ------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The day or the week (Monday to Sunday) shown; `day` is the day asked for."""

    view: str
    day: date

    @property
    def days(self) -> list[date]:
        if self.view == DAY:
            return [self.day]
        monday = self.day - timedelta(days=self.day.weekday())
        return [monday + timedelta(days=offset) for offset in range(WEEK_DAYS)]

    @property
    def step(self) -> timedelta:
        return timedelta(days=1 if self.view == DAY else WEEK_DAYS)

    @property
    def previous(self) -> date:
        return self.day - self.step

    @property
    def next(self) -> date:
        return self.day + self.step


def asked_day(value: str, *, today: date) -> date:
    """The day in `?date=`; today for garbage or a date too far away (which would also
    overflow the date arithmetic near year 1 or 9999)."""
    try:
        asked = date.fromisoformat(value)
    except ValueError:
        return today
    return asked if abs((asked - today).days) <= FARTHEST_DAYS else today


def asked_period(params: QueryDict, *, today: date) -> Period:
    view = WEEK if params.get("view") == WEEK else DAY
    return Period(view=view, day=asked_day(params.get("date", ""), today=today))


def asked_practitioner_ids(params: QueryDict) -> list[int] | None:
    """The ids in `?practitioner=` (repeatable); None when one is not a number."""
    ids = []
    for value in params.getlist("practitioner"):
        if not value.isdigit() or len(value) > 18:
            return None
        ids.append(int(value))
    return list(dict.fromkeys(ids))


def practice_today(agendas: list[Agenda], now: datetime) -> date:
    """Today at the (first) practice: a secretary's agendas share their practice's zone."""
    tz = agendas[0].practitioner.practice.tz if agendas else ZoneInfo(settings.TIME_ZONE)
    return now.astimezone(tz).date()


def window(agendas: list[Agenda], days: list[date]) -> tuple[datetime, datetime]:
    """The instants covering these local days in every agenda's time zone."""
    zones = {agenda.practitioner.practice.timezone for agenda in agendas} or {settings.TIME_ZONE}
    starts = [datetime.combine(days[0], time.min, tzinfo=ZoneInfo(zone)) for zone in zones]
    after = days[-1] + timedelta(days=1)
    ends = [datetime.combine(after, time.min, tzinfo=ZoneInfo(zone)) for zone in zones]
    return min(starts), max(ends)


# --- Reasons, hours and absences ----------------------------------------------------------------


def active_reasons(practitioner: Practitioner) -> list[VisitReason]:
    """What the practice may book: every active reason, online-bookable or not."""
    return list(VisitReason.objects.filter(practitioner=practitioner, active=True))


def load_hours(practitioner_ids: Collection[int]) -> dict[int, list[WeeklyHours]]:
    hours: dict[int, list[WeeklyHours]] = defaultdict(list)
    for row in WeeklyHours.objects.filter(practitioner_id__in=practitioner_ids):
        hours[row.practitioner_id].append(row)
    return hours


def load_absences(
    practitioner_ids: Collection[int], start: datetime, end: datetime
) -> dict[int, list[Absence]]:
    absences: dict[int, list[Absence]] = defaultdict(list)
    for absence in Absence.objects.filter(
        practitioner_id__in=practitioner_ids, start__lt=end, end__gt=start
    ).order_by("start"):
        absences[absence.practitioner_id].append(absence)
    return absences


def _minute(moment: datetime, day: date) -> int:
    """Minutes since local midnight of `day` (a local moment), clipped to the day."""
    if moment.date() < day:
        return 0
    if moment.date() > day:
        return DAY_MINUTES
    return moment.hour * 60 + moment.minute


def opening_ranges(hours: Iterable[WeeklyHours], day: date) -> list[tuple[int, int]]:
    """The merged opening ranges of `day`, in minutes since midnight."""
    ranges = sorted(
        (
            row.start_time.hour * 60 + row.start_time.minute,
            row.end_time.hour * 60 + row.end_time.minute,
        )
        for row in hours
        if row.applies_on(day)
    )
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def clock(minute: int) -> time:
    return time.max if minute >= DAY_MINUTES else time(minute // 60, minute % 60)


# --- The grid -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """The hours shown, whole hours around everything open or booked in any column."""

    first: int
    last: int

    @property
    def hours(self) -> int:
        return (self.last - self.first) // 60

    def top(self, minute: int) -> str:
        share = (min(max(minute, self.first), self.last) - self.first) / (self.last - self.first)
        return f"{share * 100:.4f}%"

    def height(self, start: int, end: int) -> str:
        start, end = max(start, self.first), min(end, self.last)
        return f"{max(end - start, 0) / (self.last - self.first) * 100:.4f}%"

    def labels(self) -> list[dict[str, object]]:
        return [
            {"time": clock(minute), "top": self.top(minute)}
            for minute in range(self.first, self.last, 60)
        ]


def axis_for(spans: Iterable[tuple[int, int]]) -> Axis:
    spans = list(spans)
    if not spans:
        return Axis(*DEFAULT_HOURS)
    first = min(start for start, _end in spans) // 60 * 60
    last = -(-max(end for _start, end in spans) // 60) * 60
    return Axis(first, max(last, first + 60))


@dataclass
class Entry:
    """An appointment or an absence in a column, in local time."""

    start: datetime
    end: datetime
    first_minute: int
    last_minute: int
    appointment: Appointment | None = None
    absence: Absence | None = None
    no_shows: int = 0
    status_actions: list[tuple[str, Promise]] = field(default_factory=list)
    person: str = ""  # who is seen: the relative when booked for one
    booked_by: str = ""  # the patient who booked for a relative
    url: str = ""
    top: str = ""
    height: str = ""

    # Formatted here, not by template filters: a week holds hundreds of entries.
    @property
    def start_label(self) -> str:
        return f"{self.start:%H:%M}"

    @property
    def end_label(self) -> str:
        return f"{self.end:%H:%M}"

    @property
    def status_url(self) -> str:
        pk = self.appointment.pk if self.appointment is not None else None
        return reverse("agenda-appointment-status", kwargs={"appointment_id": pk})


@dataclass
class Column:
    agenda: Agenda
    day: date
    is_today: bool
    opening: list[tuple[int, int]]
    entries: list[Entry]
    now_minute: int | None = None
    first_of_day: bool = False  # a day's first column, when several agendas share the day
    opening_shown: list[dict[str, object]] = field(default_factory=list)
    now_top: str = ""

    @property
    def spans(self) -> list[tuple[int, int]]:
        booked = [(e.first_minute, e.last_minute) for e in self.entries if e.appointment]
        return self.opening + booked


def status_actions(appointment: Appointment, *, now: datetime) -> list[tuple[str, Promise]]:
    """The statuses the practice may set now: ALLOWED_TRANSITIONS, with no-show only once the
    appointment has begun (as mark_status requires) and arrival only from its day on."""
    tz = appointment.practitioner.practice.tz
    started = appointment.start <= now
    begun_today = appointment.start.astimezone(tz).date() <= now.astimezone(tz).date()
    allowed = ALLOWED_TRANSITIONS.get(appointment.status, frozenset())
    hidden = set()
    if not started:
        hidden.add(Appointment.Status.NO_SHOW)
    if not begun_today:
        hidden |= {Appointment.Status.ARRIVED, Appointment.Status.DONE}
    return [
        (status, label) for status, label in STATUS_ACTIONS.items() if status in allowed - hidden
    ]


def _appointment_entry(
    appointment: Appointment, day: date, tz: ZoneInfo, no_shows: int, now: datetime
) -> Entry:
    start, end = appointment.start.astimezone(tz), appointment.end.astimezone(tz)
    relative, patient = appointment.relative, appointment.patient
    return Entry(
        start=start,
        end=end,
        first_minute=_minute(start, day),
        last_minute=_minute(end, day),
        appointment=appointment,
        no_shows=no_shows,
        status_actions=status_actions(appointment, now=now),
        person=relative.full_name if relative is not None else patient.full_name,
        booked_by=patient.full_name if relative is not None else "",
        url=reverse("agenda-appointment", kwargs={"appointment_id": appointment.pk}),
    )


def _absence_entry(absence: Absence, day: date, tz: ZoneInfo) -> Entry:
    start, end = absence.start.astimezone(tz), absence.end.astimezone(tz)
    return Entry(
        start=start,
        end=end,
        first_minute=_minute(start, day),
        last_minute=_minute(end, day),
        absence=absence,
    )


ByDay = dict[tuple[int, date], list[Appointment]]  # (practitioner id, local day): appointments


@dataclass(frozen=True)
class Sources:
    """What the columns are built from, each loaded once for all of them."""

    appointments: list[Appointment]
    no_shows: Mapping[tuple[int, int], int]
    hours: Mapping[int, list[WeeklyHours]]
    absences: Mapping[int, list[Absence]]


def _column(agenda: Agenda, day: date, sources: Sources, by_day: ByDay, now: datetime) -> Column:
    practitioner = agenda.practitioner
    tz = practitioner.practice.tz
    entries = [
        _appointment_entry(
            appointment,
            day,
            tz,
            sources.no_shows.get((practitioner.pk, appointment.patient_id), 0),
            now,
        )
        for appointment in by_day[(practitioner.pk, day)]
    ]
    day_start = datetime.combine(day, time.min, tzinfo=tz)
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    entries += [
        _absence_entry(absence, day, tz)
        for absence in sources.absences.get(practitioner.pk, [])
        if absence.start < day_end and absence.end > day_start
    ]
    entries.sort(key=lambda entry: (entry.start, entry.appointment is not None))
    local_now = now.astimezone(tz)
    is_today = local_now.date() == day
    return Column(
        agenda=agenda,
        day=day,
        is_today=is_today,
        opening=opening_ranges(sources.hours.get(practitioner.pk, []), day),
        entries=entries,
        now_minute=local_now.hour * 60 + local_now.minute if is_today else None,
    )


def _appointments_by_day(appointments: list[Appointment]) -> ByDay:
    """Each appointment under every local day it touches (one, unless it crosses midnight)."""
    by_day: ByDay = defaultdict(list)
    for appointment in appointments:
        tz = appointment.practitioner.practice.tz
        day = appointment.start.astimezone(tz).date()
        last = (appointment.end - timedelta(microseconds=1)).astimezone(tz).date()
        while day <= last:
            by_day[(appointment.practitioner_id, day)].append(appointment)
            day += timedelta(days=1)
    return by_day


@dataclass(frozen=True)
class Grid:
    axis: Axis
    columns: list[Column]

    @property
    def labels(self) -> list[dict[str, object]]:
        return self.axis.labels()


def _place(column: Column, axis: Axis) -> None:
    column.opening_shown = [
        {
            "start": clock(start),
            "end": clock(end),
            "top": axis.top(start),
            "height": axis.height(start, end),
        }
        for start, end in column.opening
    ]
    for entry in column.entries:
        entry.top = axis.top(entry.first_minute)
        entry.height = axis.height(entry.first_minute, entry.last_minute)
    if column.now_minute is not None and axis.first <= column.now_minute < axis.last:
        column.now_top = axis.top(column.now_minute)


def build_grid(*, agendas: list[Agenda], days: list[date], sources: Sources, now: datetime) -> Grid:
    """Columns day by day, each day's agendas side by side, placed on one axis."""
    by_day = _appointments_by_day(sources.appointments)
    columns = [_column(agenda, day, sources, by_day, now) for day in days for agenda in agendas]
    for index, column in enumerate(columns):
        column.first_of_day = index % len(agendas) == 0
    axis = axis_for(span for column in columns for span in column.spans)
    for column in columns:
        _place(column, axis)
    return Grid(axis=axis, columns=columns)
