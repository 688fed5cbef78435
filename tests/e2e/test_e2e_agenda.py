"""The practice's side in a browser: a practitioner's first login enrols an authenticator (the test
computes the codes from the key the page shows), then runs the day from the agenda: a booking
taken on the phone for a known patient, then the patient's arrival. A secretary with "view"
access sees the agenda without any button that changes it."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from audit.models import AccessEvent, Action
from booking.models import Appointment
from practitioners.models import StaffAccess
from tests.e2e.helpers import enrol_at_first_login
from tests.factories import (
    AppointmentFactory,
    secretary_of,
)

pytestmark = pytest.mark.e2e


def test_first_login_enrols_then_books_by_phone_and_marks_the_arrival(
    browsing: Any, surgery: Any
) -> None:
    page = browsing.new_page()

    enrol_at_first_login(page, surgery.user.email)
    page.goto("/agenda/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.get_by_role("link", name=re.compile("^book by phone$", re.I)).click()
    page.get_by_label(re.compile("name or phone number", re.I)).fill("06 11 22 33 44")
    page.get_by_role("button", name=re.compile("^search$", re.I)).click()
    expect(page.get_by_role("heading", name=surgery.patient.full_name)).to_be_visible()
    page.get_by_role("link", name=re.compile("book for this patient", re.I)).click()
    page.get_by_label(re.compile("^visit reason$", re.I)).select_option(str(surgery.reason.pk))
    page.get_by_role("button", name=re.compile("show the free times", re.I)).click()
    page.locator("input[name=start]").last.check()  # late today: still ahead whatever the minute
    page.get_by_role("button", name=re.compile("^book$", re.I)).click()

    expect(page.get_by_text(re.compile("booked by phone", re.I))).to_be_visible()
    booked = Appointment.objects.get(channel=Appointment.Channel.PHONE)
    assert (booked.patient_id, booked.status) == (surgery.patient.pk, Appointment.Status.BOOKED)

    page.locator(f"#appointment-{booked.pk} a").click()
    page.get_by_role("button", name=re.compile("^arrived$", re.I)).click()

    booked.refresh_from_db()
    assert booked.status == Appointment.Status.ARRIVED
    written = AccessEvent.objects.filter(actor_user_id=surgery.user.pk, appointment_id=booked.pk)
    assert {Action.CREATE, Action.STATUS} <= set(written.values_list("action", flat=True))
    assert browsing.server_errors == []


def test_a_secretary_with_view_access_sees_no_button_that_changes_the_agenda(
    browsing: Any, surgery: Any
) -> None:
    secretary = secretary_of(surgery.practitioner, level=StaffAccess.Level.VIEW)
    today = AppointmentFactory(
        practitioner=surgery.practitioner,
        patient=surgery.patient,
        reason=surgery.reason,
        start=datetime.now(UTC) + timedelta(minutes=30),
    )
    page = browsing.new_page()

    enrol_at_first_login(page, secretary.email)
    page.goto(f"/agenda/?practitioner={surgery.practitioner.pk}")
    expect(page.locator(f"#appointment-{today.pk}")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("book by phone", re.I))).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("block time", re.I))).to_have_count(0)

    page.locator(f"#appointment-{today.pk} a").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    only_buttons = page.get_by_role("button").all_inner_texts()
    assert sorted(only_buttons) == ["Change language", "Log out"]  # the site's, none of the agenda
    expect(page.get_by_role("link", name=re.compile("move to another time", re.I))).to_have_count(0)
    assert browsing.server_errors == []
