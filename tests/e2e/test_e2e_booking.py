"""A patient books in a real browser: search, practitioner page, slot, login, confirm, my
appointments, move to another time, cancel (in English and in French); two patients race for one
slot; a new patient signs up on the way."""

import re
from datetime import datetime

import pytest
from django.core import mail
from playwright.sync_api import Locator, Page, expect

from booking.models import Appointment
from tests.e2e.helpers import (
    ENGLISH,
    FRENCH,
    SERVER_ERROR,
    Words,
    book_and_open_my_appointments,
    first_slot,
    log_in,
)

pytestmark = pytest.mark.e2e

BOOK_BUTTON = re.compile(r"^book", re.IGNORECASE)
VERIFY_LINK = re.compile(r"https?://\S+/accounts/verify/\S+/")


def open_practitioner_from_search(page: Page, practice, words: Words = ENGLISH) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.get_by_label(words.specialty).select_option(label=practice.specialty.name)
    page.get_by_label(words.city).fill("Lyon")
    page.get_by_role("button", name=words.search).click()
    expect(page).to_have_url(re.compile(r"/search/\?"))
    page.get_by_role("link", name=re.compile(practice.practitioner.last_name)).first.click()
    expect(page).to_have_url(re.compile(rf"/practitioners/{practice.practitioner.slug}/"))


def card_at(page: Page, start_iso: str) -> Locator:
    """The card of "My appointments" whose heading shows this time (its <time datetime>)."""
    return page.get_by_role("listitem").filter(
        has=page.get_by_role("heading").locator(f'time[datetime="{start_iso}"]')
    )


@pytest.mark.parametrize("words", [ENGLISH, FRENCH], ids=["en", "fr"])
def test_search_book_see_move_and_cancel(  # type: ignore[no-untyped-def]
    browsing, practice, make_patient, words: Words
) -> None:
    page = browsing.new_page(locale=words.browser_locale, accept_language=words.accept_language)
    patient = make_patient()
    open_practitioner_from_search(page, practice, words)
    expect(page.locator("html")).to_have_attribute("lang", words.language)

    first_slot(page).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=.*book"))
    log_in(page, patient.user.email, words=words)

    # Back on the chosen slot, not on the home page.
    expect(page).to_have_url(re.compile(rf"/book/{practice.practitioner.slug}/\?"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    book_and_open_my_appointments(page, words)

    booked = Appointment.objects.get(patient=patient)
    assert booked.status == Appointment.Status.BOOKED
    listed = page.get_by_role("listitem").filter(
        has=page.get_by_role("link", name=re.compile(practice.practitioner.last_name))
    )
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(practice.reason.label)
    old_iso = listed.get_by_role("heading").locator("time").get_attribute("datetime")
    assert old_iso

    # Move it: the reschedule page offers the same practitioner's other free times as buttons.
    listed.get_by_role("link", name=words.move).click()
    expect(page).to_have_url(re.compile(rf"/me/appointments/{booked.pk}/reschedule/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(words.move_heading)
    choices = page.get_by_role("button", name=words.move_to)
    expect(choices.first).to_be_visible()
    # The current time is not free, so it is not offered; skip it anyway should it be.
    chosen = next(
        choices.nth(index)
        for index in range(choices.count())
        if choices.nth(index).locator("time").get_attribute("datetime") != old_iso
    )
    new_iso = chosen.locator("time").get_attribute("datetime")
    new_start = datetime.fromisoformat(chosen.get_attribute("value") or "")
    chosen.click()

    expect(page).to_have_url(re.compile(r"/me/appointments/\d+/booked/"))
    expect(page.get_by_role("status").filter(has_text=words.moved)).to_be_visible()
    booked.refresh_from_db()
    assert booked.status == Appointment.Status.CANCELLED
    moved = Appointment.objects.get(rescheduled_from=booked)
    assert moved.status == Appointment.Status.BOOKED
    assert moved.start == new_start != booked.start
    assert (moved.practitioner, moved.reason) == (booked.practitioner, booked.reason)
    assert page.url.endswith(f"/me/appointments/{moved.pk}/booked/")

    page.get_by_role("link", name=words.my_appointments).first.click()
    expect(page).to_have_url(re.compile(r"/me/appointments/$"))
    card = card_at(page, new_iso or "")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(practice.reason.label)
    # The old time, if still listed, is cancelled: nothing left to do with it.
    expect(card_at(page, old_iso).get_by_role("button", name=words.cancel)).to_have_count(0)
    expect(card_at(page, old_iso).get_by_role("link", name=words.move)).to_have_count(0)

    card.get_by_role("button", name=words.cancel).click()
    expect(page).to_have_url(re.compile(r"/me/appointments/$"))
    expect(page.get_by_role("status")).to_contain_text(words.cancelled)
    moved.refresh_from_db()
    assert moved.status == Appointment.Status.CANCELLED
    expect(page.get_by_role("button", name=words.cancel)).to_have_count(0)
    assert browsing.server_errors == []


def test_two_patients_race_for_one_slot(browsing, practice, make_patient) -> None:  # type: ignore[no-untyped-def]
    first, second = make_patient(), make_patient()
    pages = []
    for patient in (first, second):
        page = browsing.new_page()
        page.goto(practice.practitioner.get_absolute_url())
        first_slot(page).click()
        log_in(page, patient.user.email)
        expect(page).to_have_url(re.compile(rf"/book/{practice.practitioner.slug}/\?"))
        pages.append(page)
    assert pages[0].url == pages[1].url, "both patients must be confirming the same slot"

    # Submit both forms without waiting for either answer: two requests in flight at once.
    with pages[0].expect_navigation(), pages[1].expect_navigation():
        for page in pages:
            page.get_by_role("button", name=BOOK_BUTTON).evaluate(
                "button => button.form.requestSubmit(button)"
            )

    assert Appointment.objects.filter(status=Appointment.Status.BOOKED).count() == 1
    winner = Appointment.objects.get(status=Appointment.Status.BOOKED).patient
    won, lost = pages if winner == first else pages[::-1]
    expect(won).to_have_url(re.compile(r"/me/appointments/"))
    # The other one is told, in words, on a normal page (a conflict page or the grid with a
    # message, whichever the views choose): never an error page.
    expect(lost).not_to_have_url(re.compile(r"/me/appointments/"))
    expect(lost.get_by_role("main")).to_contain_text(
        re.compile(r"taken|no longer available", re.IGNORECASE)
    )
    expect(lost.get_by_text(SERVER_ERROR)).to_have_count(0)
    # The loser can pick another time right away.
    expect(first_slot(lost)).to_be_visible()
    assert browsing.server_errors == []


def test_sign_up_verify_then_book(browsing, page: Page, practice, settings, live_server) -> None:  # type: ignore[no-untyped-def]
    settings.CRENEAU_BASE_URL = live_server.url  # the links in emails point at this server
    page.goto(practice.practitioner.get_absolute_url())
    first_slot(page).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_role(
        "link", name=re.compile(r"create an account|sign up", re.IGNORECASE)
    ).last.click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/"))

    email = "lea.fontaine@example.test"
    password = "Plum-Orchard-7391-Lantern"
    page.get_by_label(re.compile(r"e-?mail", re.IGNORECASE)).fill(email)
    page.get_by_label(re.compile(r"^password$", re.IGNORECASE)).fill(password)
    page.get_by_label(re.compile(r"^password \(again\)|confirm", re.IGNORECASE)).fill(password)
    page.get_by_label(re.compile(r"^first name", re.IGNORECASE)).fill("Léa")
    page.get_by_label(re.compile(r"^last name", re.IGNORECASE)).fill("Fontaine")
    page.get_by_role("button", name=re.compile(r"create|sign up", re.IGNORECASE)).click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/sent/"))

    # The live server runs in this process: its mail lands in pytest-django's locmem outbox.
    links = [
        match.group(0)
        for message in mail.outbox
        if email in message.to
        for match in [VERIFY_LINK.search(message.body)]
        if match
    ]
    assert len(links) == 1, [m.subject for m in mail.outbox]
    page.goto(links[0])

    # Verified, logged in and back on the slot chosen before signing up.
    expect(page).to_have_url(re.compile(rf"/book/{practice.practitioner.slug}/\?"))
    book_and_open_my_appointments(page)
    assert Appointment.objects.filter(status=Appointment.Status.BOOKED).count() == 1
    expect(
        page.get_by_role("link", name=re.compile(practice.practitioner.last_name))
    ).to_be_visible()
    assert browsing.server_errors == []
