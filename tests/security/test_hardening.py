"""Production hardening (issue #8): a clean deploy check, security headers on pages and API
responses, cookie flags, error pages without stack traces, no personal data in logs."""

import base64
import io
import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.test import Client
from django.urls import include, path

from accounts.models import Role
from config.security import RedactPersonalData, redact
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        CRENEAU_VAR_DIR=str(tmp_path),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=_key(),
        BLIND_INDEX_KEY=_key(),
        AUDIT_CHAIN_KEY=_key(),
        ALLOWED_HOSTS="example.org",
        **extra,
    )
    return env


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _production_settings(tmp_path: Path, **env: str) -> dict[str, object]:
    names = [
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SAMESITE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "SECURE_REFERRER_POLICY",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY",
        "X_FRAME_OPTIONS",
        "ADMIN_URL",
    ]
    script = (
        "import json, config.settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


# --- Deploy check and production settings ---------------------------------------------------


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = _manage(tmp_path, "check", "--deploy")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


def test_production_settings_are_strict(tmp_path):
    values = _production_settings(tmp_path, ADMIN_URL="backstage-7f3a/")

    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "strict-origin-when-cross-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "ADMIN_URL": "backstage-7f3a/",
    }


def test_local_plain_http_stack_can_turn_redirect_and_secure_cookies_off(tmp_path):
    # docker-compose on localhost: SECURE_SSL_REDIRECT=off SECURE_COOKIES=off.
    values = _production_settings(tmp_path, SECURE_SSL_REDIRECT="off", SECURE_COOKIES="off")

    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 31536000  # only ever sent over HTTPS


def test_hsts_preload_can_be_declined_without_a_deploy_warning(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", SECURE_HSTS_PRELOAD="off")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


# --- Headers --------------------------------------------------------------------------------


@pytest.fixture
def production(settings):
    """The production values set at import when DEBUG is off (the test process imported the
    settings with DEBUG on)."""
    settings.DEBUG = False
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


COMMON_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _assert_security_headers(response: HttpResponse) -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp  # no inline script
    assert "style-src-elem 'self';" in csp  # no inline <style>
    assert "style-src 'self' 'unsafe-inline'" in csp  # style attributes (agenda positions)
    assert "img-src 'self' data:" in csp
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


@pytest.mark.django_db
def test_pages_carry_the_security_headers(client, production):
    response = client.get("/", secure=True)

    assert response.status_code == 200
    _assert_security_headers(response)


@pytest.mark.django_db
def test_api_responses_carry_the_security_headers(client, production):
    response = client.get("/api/v1/specialties/", secure=True)

    assert response.status_code == 200
    _assert_security_headers(response)


@pytest.mark.django_db
def test_hsts_is_not_sent_over_plain_http(client, production):
    production.SECURE_SSL_REDIRECT = False

    response = client.get("/")

    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(client, production):
    production.SECURE_SSL_REDIRECT = True

    response = client.get("/search/?q=x")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/search/?q=x"


@pytest.mark.django_db
def test_api_docs_get_only_the_inline_script_and_style_they_need(client, production):
    response = client.get("/api/docs/", secure=True)

    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline'" in csp
    assert "style-src-elem 'self' 'unsafe-inline'" in csp
    assert "object-src 'none'" in csp
    html = response.content.decode()
    # Swagger UI comes from our own static files (drf-spectacular-sidecar), no CDN.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "https://" not in html.split("<body>")[0]


@pytest.mark.django_db
def test_login_page_styles_come_from_our_origin(client, production):
    html = client.get("/accounts/login/", secure=True).content.decode()

    assert "<style" not in html
    assert "<script" not in html


@pytest.mark.django_db
def test_cookies_are_secure_httponly_and_samesite(client, production):
    user = UserFactory(role=Role.PATIENT, email="cookie.test@example.test")

    form = client.get("/accounts/login/", secure=True)
    login = client.post(
        "/accounts/login/",
        {"username": "cookie.test@example.test", "password": PASSWORD},
        secure=True,
    )

    assert login.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    for cookie in (form.cookies["csrftoken"], login.cookies["sessionid"]):
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"


# --- Error pages ----------------------------------------------------------------------------


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail: patient jean.dupont@example.org 06 12 34 56 78")


urlpatterns = [
    path("boom/", _boom),
    path("", include("config.urls")),
]


@pytest.mark.django_db
def test_404_page_has_no_debug_information(client, production):
    response = client.get("/no-such-page/", secure=True)

    assert response.status_code == 404
    html = response.content.decode()
    assert "<title>" in html
    assert "Traceback" not in html
    assert "URLconf" not in html
    assert "config.urls" not in html


@pytest.mark.django_db
def test_500_page_has_no_traceback(production):
    production.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)

    response = client.get("/boom/", secure=True)

    assert response.status_code == 500
    html = response.content.decode()
    assert "Traceback" not in html
    assert "secret detail" not in html
    assert "RuntimeError" not in html
    assert 'lang="' in html


def test_500_template_needs_neither_request_nor_database():
    # Django renders 500.html with an empty context: no request, no context processors. Nothing
    # here touches the database (this test has no database access at all).
    html = render_to_string("500.html")

    assert "<h1>" in html


def test_400_template_needs_neither_request_nor_database():
    html = render_to_string("400.html")

    assert "<h1>" in html


@pytest.mark.django_db
def test_403_template_renders_with_a_request(rf):
    request = rf.get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()

    html = render_to_string("403.html", request=request)

    assert "<h1>" in html


@pytest.mark.django_db
def test_admin_is_mounted_at_the_configured_url(client):
    from django.conf import settings
    from django.urls import reverse

    response = client.get("/" + settings.ADMIN_URL)

    assert reverse("admin:index") == "/" + settings.ADMIN_URL
    assert response.status_code == 302
    assert response["Location"].startswith("/" + settings.ADMIN_URL + "login/")


# --- Logs -----------------------------------------------------------------------------------


def test_redaction_blanks_emails_and_phone_numbers():
    text = "jean.dupont+rdv@example.org called from 06 12 34 56 78 and +33 6 12 34 56 79"

    assert redact(text) == "[email] called from [phone] and [phone]"


def test_redaction_keeps_ids_dates_and_times():
    text = "appointment 1234567890 at 2026-06-01 06:00:00 request 7f3a9c"

    assert redact(text) == text


@pytest.fixture
def console_output():
    """What the configured console handler (the one production logs go through) writes."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactPersonalData) for f in h.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handler.setStream(previous)  # type: ignore[attr-defined]


def test_log_records_and_tracebacks_are_redacted(console_output):
    logger = logging.getLogger("booking.test")
    logger.warning("booking for %s", "marie.curie@example.org")
    try:
        raise ValueError("phone 0612345678 is not valid")
    except ValueError:
        logger.exception("failed")

    output = console_output.getvalue()
    assert "marie.curie" not in output
    assert "0612345678" not in output
    assert "[email]" in output
    assert "[phone]" in output
    assert "Traceback" in output  # the traceback itself is kept


@pytest.mark.django_db
def test_request_errors_log_no_post_body(client, production, console_output):
    production.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)

    client.post("/boom/", {"email": "louise.michel@example.org", "phone": "0698765432"})
    client.post("/no-such-page/", {"email": "louise.michel@example.org"})

    output = console_output.getvalue()
    assert "Internal Server Error: /boom/" in output
    assert "louise.michel" not in output
    assert "0698765432" not in output
    assert "jean.dupont" not in output  # the exception's own message is redacted too
