"""Slot grids for pages: free starts laid out by local day, two weeks at a time.

Presentation only; the free starts come from booking.slots.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from booking.next_slots import iso_utc

GRID_DAYS = 14
WEEK_DAYS = 7


def grid_days(first_day: date) -> list[date]:
    return [first_day + timedelta(days=offset) for offset in range(GRID_DAYS)]


def first_day_asked(value: str, *, today: date, last_day: date) -> date:
    """The day asked for in `?start=`; today for garbage, the past or beyond the horizon."""
    try:
        asked = date.fromisoformat(value)
    except ValueError:
        return today
    return asked if today <= asked <= last_day else today


def week_navigation(first_day: date, *, today: date, last_day: date) -> dict[str, date | None]:
    """Grids move by one week; never before today nor past the booking horizon."""
    previous = max(today, first_day - timedelta(days=WEEK_DAYS)) if first_day > today else None
    following = first_day + timedelta(days=WEEK_DAYS)
    return {"previous": previous, "next": following if following <= last_day else None}


def columns(
    tz: ZoneInfo, days: list[date], slots: list[datetime], url_for: Callable[[datetime], str]
) -> list[dict[str, Any]]:
    """One column per local day: {"day", "slots": [{"start" (local), "value" (UTC), "url"}]}."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for slot in slots:
        local = slot.astimezone(tz)
        by_day[local.date()].append({"start": local, "value": iso_utc(slot), "url": url_for(slot)})
    return [{"day": day, "slots": by_day[day]} for day in days]


def weeks(day_columns: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [day_columns[i : i + WEEK_DAYS] for i in range(0, len(day_columns), WEEK_DAYS)]
