"""Page helpers shared by the browser tests: robust selectors (roles and labels), in English by
default; `FRENCH` holds the same words as locale/fr/LC_MESSAGES/django.po translates them."""

import base64
import re
from dataclasses import dataclass

from django_otp.oath import TOTP
from playwright.sync_api import Locator, Page, expect

from tests.factories import PASSWORD

SERVER_ERROR = re.compile(r"traceback|server error|internal error", re.IGNORECASE)


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class Words:
    """What a patient reads on the buttons, links and labels of one language."""

    language: str  # <html lang>
    browser_locale: str
    accept_language: str
    specialty: re.Pattern[str]
    city: re.Pattern[str]
    search: re.Pattern[str]
    email: re.Pattern[str]
    password: re.Pattern[str]
    log_in: re.Pattern[str]
    book: re.Pattern[str]
    my_appointments: re.Pattern[str]
    move: re.Pattern[str]  # the link from a card to the reschedule page
    move_heading: re.Pattern[str]
    move_to: re.Pattern[str]  # the slot buttons of the reschedule page
    moved: re.Pattern[str]
    cancel: re.Pattern[str]
    cancelled: re.Pattern[str]
    new_relative: re.Pattern[str]
    first_name: re.Pattern[str]
    last_name: re.Pattern[str]
    birth_date: re.Pattern[str]
    for_name: str  # "For {name}" on a card


ENGLISH = Words(
    language="en",
    browser_locale="en-US",
    accept_language="en",
    specialty=_words(r"specialty"),
    city=_words(r"city"),
    search=_words(r"^search$"),
    email=_words(r"e-?mail"),
    password=_words(r"^password"),
    log_in=_words(r"^log ?in$"),
    book=_words(r"^book"),
    my_appointments=_words(r"my appointments"),
    move=_words(r"^move$"),
    move_heading=_words(r"^move my appointment$"),
    move_to=_words(r"^move to "),
    moved=_words(r"has been moved"),
    cancel=_words(r"^cancel"),
    cancelled=_words(r"is cancelled"),
    new_relative=_words(r"^a relative I add now$"),
    first_name=_words(r"^first name"),
    last_name=_words(r"^last name"),
    birth_date=_words(r"^birth date"),
    for_name="For {name}",
)

FRENCH = Words(
    language="fr",
    browser_locale="fr-FR",
    accept_language="fr",
    specialty=_words(r"^spécialité$"),  # not the "Spécialités" region
    city=_words(r"^ville$"),
    search=_words(r"^rechercher$"),
    email=_words(r"e-?mail"),
    password=_words(r"^mot de passe"),
    log_in=_words(r"^se connecter$"),
    book=_words(r"^prendre ce rendez-vous"),
    my_appointments=_words(r"mes rendez-vous"),
    move=_words(r"^déplacer$"),
    move_heading=_words(r"^déplacer mon rendez-vous$"),
    move_to=_words(r"^déplacer au "),
    moved=_words(r"a été déplacé"),
    cancel=_words(r"^annuler"),
    cancelled=_words(r"est annulé"),
    new_relative=_words(r"^un proche que j.ajoute maintenant$"),
    first_name=_words(r"^prénom"),
    last_name=_words(r"^nom"),
    birth_date=_words(r"^date de naissance"),
    for_name="Pour {name}",
)


def log_in(page: Page, email: str, password: str = PASSWORD, words: Words = ENGLISH) -> None:
    """Fill the login form the page is on and submit it."""
    page.get_by_label(words.email).fill(email)
    page.get_by_label(words.password).fill(password)
    page.get_by_role("button", name=words.log_in).click()


def first_slot(page: Page) -> Locator:
    """The first bookable time on a practitioner page (links named like '…, Monday 1 June at
    09:00', or just '09:00')."""
    return page.get_by_role("link", name=re.compile(r"\b\d{1,2}:\d{2}\b")).first


def book_and_open_my_appointments(page: Page, words: Words = ENGLISH) -> None:
    """Confirm the booking the page shows, then go to "My appointments" as a patient would."""
    page.get_by_role("button", name=words.book).click()
    expect(page).to_have_url(re.compile(r"/me/appointments/"))
    page.get_by_role("link", name=words.my_appointments).first.click()
    expect(page).to_have_url(re.compile(r"/me/appointments/$"))


def code_from(page: Page) -> str:
    """The current code of the authenticator the setup page offers, as an app would compute it."""
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{TOTP(key, step=30, digits=6).token():06d}"


def enrol_at_first_login(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    log_in(page, email)
    expect(page.get_by_role("heading", name=re.compile("set up two-step", re.I))).to_be_visible()
    expect(page.locator("figure.qr-code svg")).to_be_visible()  # drawn by our server
    page.get_by_label(re.compile("^code", re.I)).fill(code_from(page))
    page.get_by_role("button", name=re.compile("^confirm$", re.I)).click()
    expect(page.get_by_text(re.compile("backup codes", re.I)).first).to_be_visible()
    page.get_by_role("link", name=re.compile("saved my codes", re.I)).click()
