"""Search parameters: paging, references, dates with FHIR prefixes.

Handling is strict: an unknown parameter or modifier answers 400 (not-supported) rather than
being ignored, so a client that believes it filters never receives more than it asked for.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.http import QueryDict
from django.utils.translation import gettext as _

from integrations.fhir.errors import FhirError

DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 1_000_000  # PostgreSQL refuses an OFFSET beyond bigint; no real client pages this far
BIGINT_MAX = 2**63 - 1
COMMON = frozenset({"_count", "_getpagesoffset", "_format", "_pretty"})
PREFIXES = ("ge", "gt", "le", "lt", "eq")
# Years outside this range name no appointment, and would overflow the date arithmetic near 9999.
FIRST_YEAR, LAST_YEAR = 1900, 2999
_ID = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class Page:
    offset: int
    count: int


@dataclass(frozen=True)
class Period:
    """[lower, upper): None is unbounded."""

    lower: datetime | None = None
    upper: datetime | None = None

    def is_empty(self) -> bool:
        return self.lower is not None and self.upper is not None and self.lower >= self.upper


def check_names(query: QueryDict, allowed: Iterable[str]) -> None:
    unknown = sorted(set(query) - COMMON - set(allowed))
    if unknown:
        raise FhirError(
            _("Unsupported search parameter: %(name)s.") % {"name": unknown[0]},
            code="not-supported",
        )


def single(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise FhirError(_("Give %(name)s once.") % {"name": name})
    return values[0] if values else None


def page_of(query: QueryDict) -> Page:
    """`_count` (default 20, capped at 100 as FHIR lets a server do) and `_getpagesoffset`."""
    count = _natural(query, "_count", default=DEFAULT_COUNT, minimum=1)
    offset = _natural(query, "_getpagesoffset", default=0, minimum=0)
    if offset > MAX_OFFSET:
        raise FhirError(_("_getpagesoffset is too large."))
    return Page(offset=offset, count=min(count, MAX_COUNT))


def _natural(query: QueryDict, name: str, *, default: int, minimum: int) -> int:
    value = single(query, name)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,18}", value) or int(value) < minimum:
        raise FhirError(_("%(name)s must be a whole number.") % {"name": name})
    return int(value)


def numeric_id(value: str) -> int | None:
    """Our ids are positive bigints; anything else names nothing."""
    if not _ID.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= BIGINT_MAX else None


def reference_id(value: str, resource_type: str) -> str:
    """The id of `Type/id`, of a bare `id`, or of an absolute URL ending in `Type/id`."""
    parts = value.rstrip("/").split("/")
    if len(parts) == 1:
        return parts[0]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    raise FhirError(
        _("Expected a reference to a %(type)s.") % {"type": resource_type}, code="invalid"
    )


def period_of(values: list[str], tz: ZoneInfo) -> Period:
    """The instants matched by every value (`ge`, `gt`, `le`, `lt`, `eq` or none, on a date or
    a dateTime with its offset). A date is a whole day in `tz`, the practice's timezone."""
    lower: datetime | None = None
    upper: datetime | None = None
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
        start, end = _span(text, tz)
        if prefix in ("ge", "eq"):
            lower = start if lower is None else max(lower, start)
        if prefix == "gt":
            lower = end if lower is None else max(lower, end)
        if prefix == "lt":
            upper = start if upper is None else min(upper, start)
        if prefix in ("le", "eq"):
            upper = end if upper is None else min(upper, end)
    return Period(lower, upper)


def _span(text: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a date or dateTime value covers, [start, end)."""
    invalid = FhirError(
        _("Dates are YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with Z or an offset: %(value)s")
        % {"value": text[:40]}
    )
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text)
            _check_year(day.year, invalid)
            start = datetime.combine(day, time.min, tzinfo=tz)
            return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
        if _DATETIME.fullmatch(text):
            instant = datetime.fromisoformat(text)
            _check_year(instant.year, invalid)
            precision = timedelta(seconds=1) if not instant.microsecond else timedelta(0, 0, 1)
            return instant, instant + precision
    except ValueError as exc:
        raise invalid from exc
    raise invalid


def _check_year(year: int, invalid: FhirError) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise invalid
