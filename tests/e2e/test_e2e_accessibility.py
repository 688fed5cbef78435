"""axe-core (shipped by axe-playwright-python) finds no serious or critical violation on the
patient pages, in English."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.helpers import first_slot, log_in

pytestmark = pytest.mark.e2e

BLOCKING = {"serious", "critical"}

# Known violations, each to be fixed in the template named, not here: rule id -> a selector; a node
# inside it (Element.closest) is not counted for that rule. Empty: none is known today.
KNOWN: dict[str, str] = {}


def blocking_violations(axe: Axe, page: Page) -> list[str]:
    page.wait_for_load_state()
    results = axe.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in BLOCKING:
            continue
        targets = [" ".join(node["target"]) for node in violation["nodes"]]
        known = KNOWN.get(violation["id"])
        if known:
            targets = [
                target
                for target in targets
                if not page.locator(target).first.evaluate(
                    "(element, known) => element.closest(known) !== null", known
                )
            ]
        if targets:
            found.append(
                f"{page.url}: {violation['id']} ({violation['impact']}): {violation['help']}"
                f" -> {'; '.join(targets[:5])}"
            )
    return found


def test_patient_pages_have_no_serious_violation(
    browsing, page: Page, practice, make_patient
) -> None:  # type: ignore[no-untyped-def]
    axe = Axe()
    patient = make_patient()
    found: dict[str, list[str]] = {}

    page.goto("/")
    found["home"] = blocking_violations(axe, page)

    page.goto(f"/search/?specialty={practice.specialty.slug}&city=Lyon")
    expect(
        page.get_by_role("link", name=re.compile(practice.practitioner.last_name))
    ).to_be_visible()
    found["search"] = blocking_violations(axe, page)

    page.goto(practice.practitioner.get_absolute_url())
    found["practitioner"] = blocking_violations(axe, page)

    first_slot(page).click()
    found["login"] = blocking_violations(axe, page)
    log_in(page, patient.user.email)
    expect(page).to_have_url(re.compile(r"/book/"))
    found["booking confirmation"] = blocking_violations(axe, page)

    page.get_by_role("button", name=re.compile(r"^book", re.IGNORECASE)).click()
    expect(page).to_have_url(re.compile(r"/me/appointments/"))
    found["booked"] = blocking_violations(axe, page)  # the confirmation, if it has its own page

    page.get_by_role("link", name=re.compile(r"my appointments", re.IGNORECASE)).first.click()
    expect(page).to_have_url(re.compile(r"/me/appointments/$"))
    found["my appointments"] = blocking_violations(axe, page)

    found = {name: violations for name, violations in found.items() if violations}
    assert not found, "\n".join(
        f"{name}: {violation}" for name, violations in found.items() for violation in violations
    )
    assert browsing.server_errors == []


def test_staff_pages_have_no_serious_violation(browsing, surgery) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.test_e2e_agenda import enrol_at_first_login

    axe = Axe()
    page = browsing.new_page()
    found: dict[str, list[str]] = {}

    page.goto("/accounts/login/")
    log_in(page, surgery.user.email)
    found["two-factor setup"] = blocking_violations(axe, page)
    page.context.clear_cookies()
    enrol_at_first_login(page, surgery.user.email)
    for name, path in {
        "agenda (day)": "/agenda/",
        "agenda (week)": "/agenda/?view=week",
        "book by phone": "/agenda/book/",
        "hours": "/agenda/hours/",
        "absences": "/agenda/absences/",
        "visit reasons": "/agenda/reasons/",
        "booking rules": "/agenda/settings/",
        "team": "/agenda/team/",
        "security": "/accounts/security/",
    }.items():
        page.goto(path)
        found[name] = blocking_violations(axe, page)

    found = {name: violations for name, violations in found.items() if violations}
    assert not found, "\n".join(v for violations in found.values() for v in violations)
