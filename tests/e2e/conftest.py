"""Browser tests: Debian's Chromium driven by Playwright (sync API) against pytest-django's live
server, on a real (transactional) database and the real clock.

`playwright install` cannot download a browser here: the tests use /usr/bin/chromium
(`apt-get install -y chromium`) and fail, never skip, when it is missing. A failing test leaves a
screenshot of each of its pages in test-results/.
"""

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# Playwright's sync API runs an asyncio loop in this thread; the ORM calls the tests make (seeding,
# assertions) would otherwise raise SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item so fixtures can tell, at teardown, that it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the e2e tests need Debian's Chromium "
            "(`apt-get update && apt-get install -y chromium`; .ci/run does it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def _fresh_cache(settings):  # type: ignore[no-untyped-def]
    """Rate-limit counters (signup, login) live in the cache: a private one per test, even when
    the suite runs against Redis."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"e2e-{uuid.uuid4()}",
        }
    }


@dataclass
class Browsing:
    """Opens browser contexts (English by default) on the live server and watches their
    responses."""

    browser: Browser
    base_url: str
    contexts: list[BrowserContext] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def new_page(self, *, locale: str = "en-US", accept_language: str = "en") -> Page:
        """A page in a fresh context; English unless told (French: "fr-FR", "fr")."""
        context = self.browser.new_context(
            base_url=self.base_url,
            locale=locale,
            extra_http_headers={"Accept-Language": accept_language},
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "response",
            lambda response: (
                self.server_errors.append(f"{response.status} {response.url}")
                if response.status >= 500
                else None
            ),
        )
        return page

    def pages(self) -> list[Page]:
        return [page for context in self.contexts for page in context.pages]


@pytest.fixture
def browsing(
    request: pytest.FixtureRequest, browser: Browser, live_server: Any, transactional_db: None
) -> Iterator[Browsing]:
    browsing = Browsing(browser=browser, base_url=live_server.url)
    yield browsing
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        folder = request.config.rootpath / "test-results"
        folder.mkdir(exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for index, page in enumerate(browsing.pages()):
            # A closed page must not hide the real failure.
            with contextlib.suppress(Exception):
                page.screenshot(path=str(folder / f"{stem}-{index}.png"), full_page=True)
    for context in browsing.contexts:
        context.close()


@pytest.fixture
def page(browsing: Browsing) -> Page:
    return browsing.new_page()


@pytest.fixture
def practice(transactional_db: None, _fresh_cache: None) -> SimpleNamespace:
    """A practitioner in Lyon open every day 08:00-18:00 (Europe/Paris), bookable right now
    (no minimum notice), with one 30-minute reason bookable online. Real time: no time_machine
    here, a frozen clock would stall the browser's timeouts."""
    from tests.factories import (
        PractitionerFactory,
        SpecialtyFactory,
        VisitReasonFactory,
        WeeklyHoursFactory,
    )

    specialty = SpecialtyFactory(name="Dermatology", slug="dermatology")
    practitioner = PractitionerFactory(
        first_name="Camille",
        last_name="Verdier",
        specialty=specialty,
        minimum_notice_minutes=0,
        cancellation_notice_hours=0,
    )
    reason = VisitReasonFactory(practitioner=practitioner, label="Skin check", duration_minutes=30)
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=time(8), end_time=time(18)
        )
    return SimpleNamespace(practitioner=practitioner, reason=reason, specialty=specialty)


@pytest.fixture
def make_patient(transactional_db: None) -> Callable[..., Any]:
    """A patient with a verified account whose password is PASSWORD."""
    from tests.factories import PatientFactory

    def make(**kwargs: Any) -> Any:
        return PatientFactory(**kwargs)

    return make


# --- A practice for the staff journeys ------------------------------------------------------
PHONE = "+33611223344"


def midday_zone() -> str:
    """An IANA zone where it is around noon now: the agenda's 08:00-18:00 day is under way
    whatever the hour this runs, so today has free times and an arrival can be marked."""
    from datetime import UTC, datetime

    offset = 12 - datetime.now(UTC).hour
    offset = max(-12, min(14, offset))
    if offset == 0:
        return "Etc/GMT"
    # POSIX sign convention: Etc/GMT-3 is three hours ahead of UTC.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture
def surgery(transactional_db: None, _fresh_cache: None) -> Any:
    from datetime import UTC, datetime, timedelta

    from accounts.models import Role
    from booking.models import Appointment
    from tests.factories import (
        AppointmentFactory,
        PatientFactory,
        PractitionerFactory,
        UserFactory,
        VisitReasonFactory,
        WeeklyHoursFactory,
    )

    user = UserFactory(role=Role.PRACTITIONER)
    practitioner = PractitionerFactory(user=user, minimum_notice_minutes=0)
    practitioner.practice.timezone = midday_zone()
    practitioner.practice.save(update_fields=["timezone"])
    reason = VisitReasonFactory(practitioner=practitioner, label="Follow-up", duration_minutes=15)
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=time(8), end_time=time(18)
        )
    patient = PatientFactory(phone=PHONE)
    # A patient of this practitioner: seen last month.
    AppointmentFactory(
        practitioner=practitioner,
        patient=patient,
        reason=reason,
        start=datetime.now(UTC) - timedelta(days=30),
        status=Appointment.Status.DONE,
    )
    return SimpleNamespace(user=user, practitioner=practitioner, reason=reason, patient=patient)
