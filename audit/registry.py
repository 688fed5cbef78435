"""Which views touch appointment data, declared on the view itself.

Every view reachable through a URL carries one of two marks:

- `@audited`: it reads or changes appointment data and records it through booking.selectors or
  a service (tests/audit/test_coverage.py requests each one and fails if no event is written);
- `@audit_exempt("why")`: it shows nothing of any appointment (public pages, free slots, account
  pages), with the reason next to it for the reviewer.

tests/audit/test_coverage.py walks every URL pattern and fails on a view with neither mark, so a
new page or API route cannot be added without someone deciding, in code review, which it is.
"""

from collections.abc import Callable
from typing import Any, TypeVar

AUDITED = "audited"
EXEMPT = "exempt"
ATTRIBUTE = "audit_coverage"
REASON = "audit_exempt_reason"

View = TypeVar("View", bound=Callable[..., Any] | type)


def audited(view: View) -> View:
    """Mark a view (function or class) as reading or changing appointment data."""
    setattr(view, ATTRIBUTE, AUDITED)
    return view


def audit_exempt(reason: str) -> Callable[[View], View]:
    """Mark a view as showing no appointment data, and say why."""
    if not reason.strip():
        raise ValueError("an audit exemption needs a reason")

    def mark(view: View) -> View:
        setattr(view, ATTRIBUTE, EXEMPT)
        setattr(view, REASON, reason)
        return view

    return mark


def coverage_of(callback: Any) -> str | None:
    """The mark of a URL pattern's callback: on it, its class (Django or DRF), or what it wraps."""
    seen = 0
    while callback is not None and seen < 10:
        for candidate in (
            callback,
            getattr(callback, "view_class", None),
            getattr(callback, "cls", None),
        ):
            mark = getattr(candidate, ATTRIBUTE, None)
            if mark is not None:
                return mark
        callback = getattr(callback, "__wrapped__", None)
        seen += 1
    return None
