"""French (default) and English: the catalog is complete, compiled, and the switcher works."""

import ast
import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
FR_DIR = ROOT / "locale" / "fr" / "LC_MESSAGES"
PO = FR_DIR / "django.po"
MO = FR_DIR / "django.mo"


# --- The catalog -----------------------------------------------------------------------------
# polib is not a dependency: a small reader of the subset of the .po format that
# `makemessages` writes (comments, msgctxt, msgid, msgid_plural, msgstr, msgstr[n]).


def parse_po(text: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        flags: set[str] = set()
        fields: dict[str, str] = {}
        key = None
        obsolete = False
        for line in block.splitlines():
            if line.startswith("#~"):
                obsolete = True
            elif line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                assert key is not None, block
                fields[key] += ast.literal_eval(line)
            else:
                match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
                assert match, f"unexpected line in {PO.name}: {line!r}"
                key = match.group(1)
                fields[key] = ast.literal_eval(match.group(2))
        if not obsolete:
            entries.append({"flags": flags, **fields})
    return entries


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, object]]:
    return parse_po(PO.read_text(encoding="utf-8"))


def test_the_french_catalog_exists_and_is_not_empty(catalog):
    assert settings.LOCALE_PATHS == [ROOT / "locale"]
    header, *messages = catalog
    assert header["msgid"] == ""
    assert "Language: fr\n" in str(header["msgstr"])
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in str(header["msgstr"])
    assert len(messages) > 100


def test_every_message_is_translated_and_none_is_fuzzy(catalog):
    untranslated = []
    fuzzy = []
    for entry in catalog:
        if "fuzzy" in entry["flags"]:  # type: ignore[operator]
            fuzzy.append(entry["msgid"])
        if entry["msgid"] == "":
            continue
        if "msgid_plural" in entry:
            forms = [entry.get("msgstr[0]"), entry.get("msgstr[1]")]
        else:
            forms = [entry.get("msgstr")]
        if not all(forms):
            untranslated.append(entry["msgid"])
    assert untranslated == [], "untranslated messages; run makemessages, translate, compilemessages"
    assert fuzzy == [], "fuzzy messages; review them and remove the fuzzy flag"
    assert "#, fuzzy" not in PO.read_text(encoding="utf-8")


def test_placeholders_survive_translation(catalog):
    placeholder = re.compile(r"%\(\w+\)s|\{\{\s*\w+\s*\}\}")
    for entry in catalog:
        if not entry["msgid"]:
            continue
        expected = sorted(placeholder.findall(str(entry["msgid"])))
        if "msgid_plural" in entry:
            translations = [entry["msgstr[0]"], entry["msgstr[1]"]]
        else:
            translations = [entry["msgstr"]]
        for translation in translations:
            assert sorted(placeholder.findall(str(translation))) == expected, entry["msgid"]


def test_the_compiled_catalog_is_up_to_date(catalog):
    # Compare what Django will load (the .mo) with the source (.po), message by message: a .mo
    # compiled before the last edit of the .po, or never compiled, fails here.
    assert MO.exists(), "run: manage.py compilemessages -l fr --ignore=.venv"
    with MO.open("rb") as mo:
        compiled = dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for entry in catalog[1:]:  # the header is checked below: msgfmt drops POT-Creation-Date
        msgid = str(entry["msgid"])
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        if "msgid_plural" in entry:
            for key, value in entry.items():
                if key.startswith("msgstr["):
                    expected[(msgid, int(key[7:-1]))] = str(value)
        else:
            expected[msgid] = str(entry["msgstr"])
    header = compiled.pop("")
    assert "Language: fr\n" in header
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in header
    stale = {
        key for key in expected.keys() | compiled.keys() if expected.get(key) != compiled.get(key)
    }
    assert not stale, f"run: manage.py compilemessages -l fr --ignore=.venv ({len(stale)} differ)"


def test_the_catalog_passes_msgfmt_checks(tmp_path):
    assert shutil.which("msgfmt"), "needs gettext's msgfmt: apt-get install gettext"
    # The checks `compilemessages` runs, plus the header and accelerator checks.
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(PO)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_compiled_catalog_is_not_git_ignored():
    assert shutil.which("git"), "needs git"
    assert (ROOT / ".git").exists(), "run from a git checkout"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(MO.relative_to(ROOT))],
        cwd=ROOT,
        check=False,
        capture_output=True,
    )
    assert ignored.returncode == 1, "locale/**/django.mo must be committed"


# --- Pages -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_home_is_in_french_by_default(client):
    html = client.get("/").content.decode()

    assert '<html lang="fr">' in html
    assert ">Rechercher</button>" in html
    assert "Prendre un rendez-vous médical" in html
    assert ">Search</button>" not in html


@pytest.mark.django_db
def test_home_follows_the_browser_language(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en">' in html
    assert ">Search</button>" in html
    assert "Book a medical appointment" in html


@pytest.mark.django_db
def test_an_unsupported_browser_language_falls_back_to_french(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert '<html lang="fr">' in html
    assert ">Rechercher</button>" in html


@pytest.mark.django_db
def test_the_switcher_is_an_accessible_form_that_works_without_javascript(client):
    html = client.get("/search/?city=Lyon").content.decode()

    form = re.search(r'<form class="language"[^>]*>.*?</form>', html, re.S)
    assert form, "language switcher missing from the header"
    form_html = form.group(0)
    assert 'method="post"' in form_html
    assert 'action="/i18n/setlang/"' in form_html
    assert 'name="csrfmiddlewaretoken"' in form_html
    assert '<input type="hidden" name="next" value="/search/?city=Lyon">' in form_html
    assert '<label for="language-select">Langue</label>' in form_html
    assert '<select id="language-select" name="language">' in form_html
    assert '<option value="fr" lang="fr" selected>Français</option>' in form_html
    assert '<option value="en" lang="en">English</option>' in form_html
    assert re.search(r'<button type="submit"[^>]*>Changer de langue</button>', form_html)
    header = re.search(r"<header.*?</header>", html, re.S)
    assert header
    assert form_html in header.group(0)


@pytest.mark.django_db
def test_choosing_english_sticks_across_pages(client):
    client.get("/")  # sets the CSRF cookie, as a browser would
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/search/"})

    assert response.status_code == 302
    assert response["Location"] == "/search/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"

    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert ">Search</button>" in html
    assert '<option value="en" lang="en" selected>English</option>' in html

    client.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    assert ">Rechercher</button>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_the_switcher_requires_a_csrf_token(db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/i18n/setlang/", {"language": "en", "next": "/"})

    assert response.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


@pytest.mark.django_db
def test_the_switcher_refuses_foreign_redirects(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_an_unknown_language_is_ignored(client):
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert ">Rechercher</button>" in client.get("/").content.decode()
