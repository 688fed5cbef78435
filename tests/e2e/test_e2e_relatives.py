"""A patient books for a relative in a real browser: one added inline on the confirmation page,
or one already among their relatives; the appointment is the relative's (database and pages)."""

import re

import pytest
from playwright.sync_api import Page, expect

from booking.models import Appointment
from patients.models import Relative
from tests.e2e.helpers import ENGLISH, first_slot, log_in

pytestmark = pytest.mark.e2e

WORDS = ENGLISH


def open_booking_page(page: Page, practice, patient) -> None:  # type: ignore[no-untyped-def]
    page.goto(practice.practitioner.get_absolute_url())
    first_slot(page).click()
    log_in(page, patient.user.email)
    expect(page).to_have_url(re.compile(rf"/book/{practice.practitioner.slug}/\?"))


def book_and_check_pages(page: Page, practice, patient, name: str) -> Appointment:  # type: ignore[no-untyped-def]
    """Confirm, then find the relative's name on the confirmation and on their card."""
    page.get_by_role("button", name=WORDS.book).click()
    expect(page).to_have_url(re.compile(r"/me/appointments/\d+/booked/"))
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.status == Appointment.Status.BOOKED
    expect(page.get_by_role("main")).to_contain_text(name)

    page.get_by_role("link", name=WORDS.my_appointments).first.click()
    expect(page).to_have_url(re.compile(r"/me/appointments/$"))
    card = page.get_by_role("listitem").filter(
        has=page.get_by_role("link", name=re.compile(practice.practitioner.last_name))
    )
    expect(card).to_have_count(1)
    expect(card).to_contain_text(WORDS.for_name.format(name=name))
    return appointment


def test_book_for_a_relative_added_inline(browsing, page: Page, practice, make_patient) -> None:  # type: ignore[no-untyped-def]
    patient = make_patient()
    open_booking_page(page, practice, patient)

    page.get_by_role("radio", name=WORDS.new_relative).check()
    page.get_by_label(WORDS.first_name).fill("Zoé")
    page.get_by_label(WORDS.last_name).fill("Marchand")
    page.get_by_label(WORDS.birth_date).fill("2016-05-14")
    appointment = book_and_check_pages(page, practice, patient, "Zoé Marchand")

    relative = Relative.objects.get(managed_by=patient)
    assert (relative.first_name, relative.last_name) == ("Zoé", "Marchand")
    assert relative.birth_date.isoformat() == "2016-05-14"
    assert appointment.relative == relative

    # And it is now one of "My relatives".
    page.get_by_role("link", name=re.compile(r"^my relatives$", re.IGNORECASE)).first.click()
    expect(page).to_have_url(re.compile(r"/me/relatives/$"))
    expect(page.get_by_role("heading", name="Zoé Marchand")).to_be_visible()
    assert browsing.server_errors == []


def test_book_for_an_existing_relative(browsing, page: Page, practice, make_patient) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import RelativeFactory

    patient = make_patient()
    relative = RelativeFactory(managed_by=patient, first_name="Jules", last_name="Moreau")
    RelativeFactory(first_name="Inès", last_name="Garnier")  # another patient's: not offered
    open_booking_page(page, practice, patient)

    expect(page.get_by_role("radio", name=re.compile("Garnier"))).to_have_count(0)
    page.get_by_role("radio", name="Jules Moreau").check()
    appointment = book_and_check_pages(page, practice, patient, "Jules Moreau")

    assert appointment.relative == relative
    assert Relative.objects.filter(managed_by=patient).count() == 1  # none added on the way
    assert browsing.server_errors == []
