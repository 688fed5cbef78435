"""The maintained "next free slots" table (NextSlots) that search sorts and displays by.

One row per online-bookable active reason of each practitioner taking bookings online, holding the
first SLOTS_KEPT free starts the engine offers a patient (now + minimum notice up to the horizon).
Kept up to date three ways:

- after every booking, cancellation and reschedule: the services call `refresh_after_commit`;
- after a change of hours, absences, reasons or practitioner settings: practitioners.services
  wrap their writes in `refresh_once_after_commit`; edits made outside them (the admin, shell,
  fixtures) reach the signal receivers below;
- as time passes: a row is valid until its first slot falls within the minimum notice (or for
  VALIDITY_WITHOUT_SLOTS when it has fewer than SLOTS_KEPT slots, as the horizon moves on).
  Readers recompute what has expired (`refresh_stale_next_slots`, `next_slots_for`), and
  `manage.py refresh_next_slots --stale` can run periodically so readers rarely have to.

The table is a cache: the booking service still checks the engine and the database constraint,
so a slot shown here and taken meanwhile answers "taken", never a double booking.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from booking.availability import ONE_DAY
from booking.models import NextSlots
from booking.slots import booking_window, compute_slots, load_schedules
from practitioners.models import Absence, Practitioner, VisitReason, WeeklyHours

logger = logging.getLogger(__name__)

SLOTS_KEPT = 3
WINDOW_DAYS = 14  # the horizon is searched in windows: most agendas have 3 free slots in the first
VALIDITY_WITHOUT_SLOTS = timedelta(hours=1)
BATCH_SIZE = 200
STALE_REFRESH_LIMIT = 200  # per search request; the periodic command catches up with the rest


@dataclass(frozen=True)
class FreeSlot:
    start: datetime  # UTC
    reason_id: int


def _eligible(practitioner: Practitioner) -> list[VisitReason]:
    """Reasons with a row; `online_reasons` must be prefetched (active and online-bookable)."""
    if not practitioner.online_booking_enabled:
        return []
    return list(practitioner.online_reasons)  # type: ignore[attr-defined]


def with_online_reasons(practitioners: QuerySet[Practitioner]) -> QuerySet[Practitioner]:
    reasons = VisitReason.objects.filter(active=True, online_bookable=True)
    return practitioners.select_related("practice").prefetch_related(
        Prefetch("reasons", queryset=reasons, to_attr="online_reasons")
    )


# --- Computing ----------------------------------------------------------------------------------


def compute_next_slots(
    practitioners: Sequence[Practitioner], *, now: datetime
) -> dict[tuple[int, int], list[datetime]]:
    """The first SLOTS_KEPT free starts per (practitioner, eligible reason), from the engine.

    Schedules are loaded in batch, one window of WINDOW_DAYS at a time, only for the
    practitioners still short of slots; practitioners sharing a local date share the loads.
    """
    found: dict[tuple[int, int], list[datetime]] = {
        (p.pk, r.pk): [] for p in practitioners for r in _eligible(p)
    }
    by_today: dict[date, list[Practitioner]] = defaultdict(list)
    for practitioner in practitioners:
        if _eligible(practitioner):
            by_today[now.astimezone(practitioner.practice.tz).date()].append(practitioner)
    for today, group in by_today.items():
        _search_windows(group, today=today, now=now, found=found)
    return found


def _short(practitioner: Practitioner, found: dict[tuple[int, int], list[datetime]]) -> bool:
    return any(len(found[practitioner.pk, r.pk]) < SLOTS_KEPT for r in _eligible(practitioner))


def _search_windows(
    group: list[Practitioner],
    *,
    today: date,
    now: datetime,
    found: dict[tuple[int, int], list[datetime]],
) -> None:
    first = today
    pending = group
    while pending:
        last = first + timedelta(days=WINDOW_DAYS - 1)
        windows = {p.pk: booking_window(p, now=now) for p in pending}
        pending = [p for p in pending if first <= (windows[p.pk].latest_day or first)]
        if not pending:
            return
        # A day of margin each side: hours of the neighbouring days could adjoin in real time, as
        # in is_offered; only the slots of first..last are kept from this window.
        schedules = load_schedules(pending, first - ONE_DAY, last + ONE_DAY)
        for practitioner in pending:
            tz = practitioner.practice.tz
            for reason in _eligible(practitioner):
                kept = found[practitioner.pk, reason.pk]
                if len(kept) >= SLOTS_KEPT:
                    continue
                starts = compute_slots(
                    practitioner=practitioner,
                    reason=reason,
                    schedule=schedules[practitioner.pk],
                    first_day=first - ONE_DAY,
                    last_day=last + ONE_DAY,
                    window=windows[practitioner.pk],
                )
                inside = [s for s in starts if first <= s.astimezone(tz).date() <= last]
                kept += inside[: SLOTS_KEPT - len(kept)]
        pending = [p for p in pending if _short(p, found)]
        first = last + ONE_DAY


def _valid_until(practitioner: Practitioner, slots: list[datetime], now: datetime) -> datetime:
    if not slots:
        return now + VALIDITY_WITHOUT_SLOTS
    until = slots[0] - practitioner.minimum_notice
    # Fewer slots than wanted: the horizon moving on at midnight may bring more.
    return until if len(slots) >= SLOTS_KEPT else min(until, now + VALIDITY_WITHOUT_SLOTS)


def iso_utc(start: datetime) -> str:
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Writing ------------------------------------------------------------------------------------


def refresh_next_slots(*, practitioner_ids: Iterable[int], now: datetime | None = None) -> int:
    """Recompute the rows of these practitioners (dropping those no longer eligible); how many
    rows were written."""
    ids = sorted(set(practitioner_ids))
    if not ids:
        return 0
    with transaction.atomic():
        # The agenda lock of booking: two refreshes of one agenda (after two bookings) run one
        # after the other, so the later write was computed from a read that saw both bookings.
        practitioners = list(
            with_online_reasons(
                Practitioner.objects.select_for_update(no_key=True, of=("self",)).filter(pk__in=ids)
            ).order_by("pk")
        )
        return len(_write(practitioners, ids=ids, now=now or timezone.now()))


def _write(practitioners: list[Practitioner], *, ids: list[int], now: datetime) -> list[NextSlots]:
    found = compute_next_slots(practitioners, now=now)
    by_pk = {p.pk: p for p in practitioners}
    rows = [
        NextSlots(
            practitioner_id=practitioner_id,
            reason_id=reason_id,
            slots=[iso_utc(start) for start in starts],
            first_slot=starts[0] if starts else None,
            computed_at=now,
            valid_until=_valid_until(by_pk[practitioner_id], starts, now),
        )
        for (practitioner_id, reason_id), starts in found.items()
    ]
    NextSlots.objects.filter(practitioner_id__in=ids).exclude(
        reason_id__in=[reason_id for _pk, reason_id in found]
    ).delete()
    NextSlots.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["practitioner", "reason"],
        update_fields=["slots", "first_slot", "computed_at", "valid_until"],
    )
    return rows


def refresh_in_batches(
    *, practitioner_ids: Iterable[int], batch_size: int = BATCH_SIZE, now: datetime | None = None
) -> int:
    ids = sorted(set(practitioner_ids))
    return sum(
        refresh_next_slots(practitioner_ids=ids[i : i + batch_size], now=now)
        for i in range(0, len(ids), batch_size)
    )


def refresh_after_commit(*, practitioner_id: int) -> None:
    """Recompute after the current transaction commits (at once outside one), on a Celery worker
    when there is one: the engine run over the horizon stays off the booking request. Robust: a
    failed refresh is logged and leaves a row that the next booking or schedule change rewrites."""
    transaction.on_commit(partial(_refresh_soon, practitioner_id), robust=True)


def _refresh_soon(practitioner_id: int) -> None:
    from booking.tasks import refresh_practitioner_next_slots

    try:
        refresh_practitioner_next_slots.delay(practitioner_id)
    except Exception:  # broker unreachable: do it here rather than leave search stale
        logger.warning("broker unreachable; next slots refreshed in process")
        refresh_next_slots(practitioner_ids=[practitioner_id])


def refresh_expired(*, batch_size: int = BATCH_SIZE) -> int:
    """Recompute every row past its validity (Celery beat every few minutes, or the command), so
    searches rarely have to do it themselves."""
    ids = set(
        NextSlots.objects.filter(valid_until__lt=timezone.now()).values_list(
            "practitioner_id", flat=True
        )
    )
    return refresh_in_batches(practitioner_ids=sorted(ids), batch_size=batch_size)


# --- Reading ------------------------------------------------------------------------------------


def refresh_stale_next_slots(
    *, practitioners: QuerySet[Practitioner], now: datetime | None = None
) -> int:
    """Before sorting by first slot: recompute the expired rows of these practitioners, at most
    STALE_REFRESH_LIMIT practitioners; one query when nothing has expired."""
    now = now or timezone.now()
    stale = list(
        NextSlots.objects.filter(valid_until__lt=now, practitioner__in=practitioners.values("pk"))
        .values_list("practitioner_id", flat=True)
        .distinct()[:STALE_REFRESH_LIMIT]
    )
    return refresh_next_slots(practitioner_ids=stale, now=now) if stale else 0


def _needs_refresh(practitioner: Practitioner, rows: list[NextSlots], now: datetime) -> bool:
    expected = {reason.pk for reason in _eligible(practitioner)}
    return {row.reason_id for row in rows} != expected or any(row.valid_until < now for row in rows)


def next_slots_for(
    practitioners: Sequence[Practitioner], *, now: datetime | None = None
) -> dict[int, list[FreeSlot]]:
    """The first SLOTS_KEPT free starts of each practitioner over its reasons, from the table.

    Missing or expired rows are recomputed first, in one batch. One query when all are fresh
    (`online_reasons` must be prefetched).
    """
    now = now or timezone.now()
    ids = [p.pk for p in practitioners]
    rows: dict[int, list[NextSlots]] = defaultdict(list)
    for row in NextSlots.objects.filter(practitioner_id__in=ids):
        rows[row.practitioner_id].append(row)
    stale = [p for p in practitioners if _needs_refresh(p, rows[p.pk], now)]
    if stale:
        ids = sorted(p.pk for p in stale)
        with transaction.atomic():
            # Locked as in refresh_next_slots; computed from the practitioners already loaded.
            list(
                Practitioner.objects.select_for_update(no_key=True)
                .filter(pk__in=ids)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            fresh = _write(stale, ids=ids, now=now)
        for pk in ids:
            rows[pk] = []
        for row in fresh:
            rows[row.practitioner_id].append(row)
    return {p.pk: _merged(rows[p.pk], _eligible(p)) for p in practitioners}


def _merged(rows: list[NextSlots], reasons: list[VisitReason]) -> list[FreeSlot]:
    """The earliest starts over all reasons; a start offered for several reasons once, with the
    first of them in the practitioner's order."""
    position = {reason.pk: index for index, reason in enumerate(reasons)}
    candidates = sorted(
        (datetime.fromisoformat(start), position.get(row.reason_id, len(position)), row.reason_id)
        for row in rows
        for start in row.slots
    )
    merged: list[FreeSlot] = []
    for start, _position, reason_id in candidates:
        if not merged or merged[-1].start != start:
            merged.append(FreeSlot(start=start, reason_id=reason_id))
    return merged[:SLOTS_KEPT]


# --- Schedule changes ---------------------------------------------------------------------------
# The settings services (practitioners.services) refresh explicitly, once per change. The admin
# (hours and reasons inlines, absences, practitioner settings) and direct model writes have no
# service to call a hook from, so these receivers remain for them: they only schedule a refresh,
# after commit, and stand aside while a service that will refresh anyway is writing.

_refreshing: ContextVar[frozenset[int]] = ContextVar("next_slots_refreshing", default=frozenset())


@contextmanager
def refresh_once_after_commit(*, practitioner_id: int) -> Iterator[None]:
    """For a service that changes a practitioner's hours, absences, reasons or settings: one
    refresh after commit, however many rows it writes. Nothing is scheduled if it raises."""
    token = _refreshing.set(_refreshing.get() | {practitioner_id})
    try:
        yield
    finally:
        _refreshing.reset(token)
    refresh_after_commit(practitioner_id=practitioner_id)


def _schedule_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    practitioner_id = instance.pk if sender is Practitioner else instance.practitioner_id
    if practitioner_id in _refreshing.get():
        return
    # The admin saves hours, then their reasons (m2m) in the same transaction: after commit,
    # the refresh sees both.
    refresh_after_commit(practitioner_id=practitioner_id)


def connect_signals() -> None:
    # A deleted practitioner's rows go with it (cascade): its refresh finds nothing to do.
    for model in (WeeklyHours, Absence, VisitReason, Practitioner):
        uid = f"next_slots_{model.__name__}"
        post_save.connect(_schedule_changed, sender=model, dispatch_uid=f"{uid}_saved")
        post_delete.connect(_schedule_changed, sender=model, dispatch_uid=f"{uid}_deleted")
