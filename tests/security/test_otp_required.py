"""No protected URL answers a session that still owes its second factor.

The URL patterns are enumerated from the resolver, so a page or endpoint added later under
/agenda/, /audit/, /me/, the admin or /api/v1/ is covered without touching this file: a logged-in
practitioner who has not passed the second factor is sent to the 2FA pages (web) or gets 403
`otp_required` (API), whatever the method.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from django.utils.regex_helper import normalize
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import PatientFactory, PractitionerFactory, UserFactory, secretary_of

SAMPLES = {"int": "1", "slug": "sample-slug", "str": "sample", "path": "1"}
UUID_SAMPLE = "00000000-0000-4000-8000-000000000001"
VERIFY = "/accounts/two-factor/verify/"
SETUP = "/accounts/two-factor/setup/"


@dataclass(frozen=True)
class Endpoint:
    path: str
    view: Callable[..., Any]
    only_routes: bool  # every part is a path() route: the sample path must resolve back to it

    def __str__(self) -> str:
        return self.path


def _sample(pattern: object, group: str) -> str:
    converter = getattr(pattern, "converters", {}).get(group)
    name = type(converter).__name__.removesuffix("Converter").lower() if converter else ""
    return UUID_SAMPLE if name == "uuid" else SAMPLES.get(name, "1")


def _fill(pattern: object) -> str:
    regex = pattern.regex.pattern  # type: ignore[attr-defined]
    template, groups = normalize(regex)[0]
    return template % {group: _sample(pattern, group) for group in groups}


def walk(patterns: list[object], prefix: str = "", routes: bool = True) -> Iterator[Endpoint]:
    for entry in patterns:
        part = _fill(entry.pattern)  # type: ignore[attr-defined]
        is_route = routes and isinstance(entry.pattern, RoutePattern)  # type: ignore[attr-defined]
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + part, is_route)
        elif isinstance(entry, URLPattern):
            yield Endpoint("/" + prefix + part, entry.callback, is_route)


def protected_prefixes() -> tuple[str, ...]:
    return ("/agenda/", "/audit/", "/" + settings.ADMIN_URL, "/me/", "/api/v1/")


def endpoints(*prefixes: str) -> list[Endpoint]:
    found = {e.path: e for e in walk(get_resolver().url_patterns) if e.path.startswith(prefixes)}
    return sorted(found.values(), key=lambda e: e.path)


WEB = endpoints(*(p for p in protected_prefixes() if p != "/api/v1/"))
API = endpoints("/api/v1/")
SECURITY_PAGES = [
    "/accounts/security/",
    "/accounts/security/password/",
    "/accounts/security/email/",
    "/accounts/security/email/sent/",
    "/accounts/security/sessions/end-others/",
    "/accounts/two-factor/backup-codes/",
    "/accounts/two-factor/replace/",
    "/accounts/two-factor/disable/",
]


def test_the_enumeration_finds_the_protected_urls():
    paths = [e.path for e in WEB + API]
    for prefix in ("/me/", "/api/v1/", "/" + settings.ADMIN_URL, "/agenda/"):
        assert any(path.startswith(prefix) for path in paths), prefix
    assert "/api/v1/appointments/1/status/" in paths
    assert "/me/appointments/" in paths
    assert len(WEB) > 20


@pytest.mark.parametrize("endpoint", [e for e in WEB + API if e.only_routes], ids=str)
def test_each_sample_path_resolves_to_its_own_pattern(endpoint):
    assert resolve(endpoint.path).func is endpoint.view


@pytest.fixture
def unverified_practitioner(db) -> tuple[Client, User]:
    """A practitioner with an authenticator, logged in with the password only."""
    user = PractitionerFactory().user
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.mark.parametrize("endpoint", WEB, ids=str)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_protected_page_sends_an_unverified_practitioner_to_the_second_factor(
    unverified_practitioner, endpoint, method
):
    client, _ = unverified_practitioner

    response = getattr(client, method)(endpoint.path)

    assert response.status_code == 302, endpoint
    if method == "get":  # back to the page asked for, once verified
        assert response["Location"] == f"{VERIFY}?{urlencode({'next': endpoint.path})}"
    else:
        assert response["Location"] == VERIFY


@pytest.mark.parametrize("endpoint", API, ids=str)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_api_endpoint_refuses_an_unverified_practitioner(
    unverified_practitioner, endpoint, method
):
    client, _ = unverified_practitioner

    response = getattr(client, method)(endpoint.path)

    assert response.status_code == 403, endpoint
    assert response.json()["code"] == "otp_required"
    assert response.json()["detail"]


@pytest.mark.parametrize("path", SECURITY_PAGES)
def test_the_security_pages_need_the_second_factor_too(unverified_practitioner, path):
    client, _ = unverified_practitioner

    assert client.get(path)["Location"].startswith(VERIFY)


def test_staff_without_an_authenticator_are_sent_to_enrolment(db):
    client = Client()
    client.force_login(secretary_of(PractitionerFactory()))

    assert client.get("/agenda/")["Location"] == f"{SETUP}?next=%2Fagenda%2F"
    assert client.get("/api/v1/appointments/").json()["code"] == "otp_required"


@pytest.mark.parametrize(
    "path",
    ["/", "/search/", "/healthz", VERIFY, "/accounts/password-reset/", "/accounts/login/"],
)
def test_public_and_second_factor_pages_stay_open(unverified_practitioner, path):
    client, _ = unverified_practitioner

    response = client.get(path)

    assert response.status_code in {200, 302}
    assert not response.get("Location", "").startswith((VERIFY, SETUP))


def test_logout_stays_open(unverified_practitioner):
    client, _ = unverified_practitioner

    assert client.post("/accounts/logout/")["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_a_verified_practitioner_gets_through(db, otp_login):
    client = Client()
    otp_login(client, PractitionerFactory().user)

    assert client.get("/api/v1/appointments/").status_code == 200
    assert not client.get("/agenda/").get("Location", "").startswith(VERIFY)


def test_public_api_stays_open_to_anonymous_visitors_but_not_to_unverified_staff(
    db, unverified_practitioner
):
    assert Client().get("/api/v1/specialties/").status_code == 200

    client, _ = unverified_practitioner
    assert client.get("/api/v1/specialties/").status_code == 403


def test_patients_without_two_factor_are_not_asked_for_it(db):
    client = Client()
    client.force_login(PatientFactory().user)

    assert client.get("/me/appointments/").status_code == 200
    assert client.get("/api/v1/appointments/").status_code == 200


def test_an_unverified_django_staff_user_without_a_role_is_refused_too(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True))

    assert client.get("/" + settings.ADMIN_URL)["Location"].startswith(SETUP)


# --- DRF holds the rule on its own -------------------------------------------------------------


@pytest.fixture
def without_the_middleware(settings):  # type: ignore[no-untyped-def]
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "accounts.middleware.TwoFactorMiddleware"
    ]


@pytest.mark.usefixtures("without_the_middleware")
@pytest.mark.parametrize("path", ["/api/v1/appointments/", "/api/v1/specialties/"])
def test_drf_refuses_an_unverified_session_without_the_middleware(unverified_practitioner, path):
    client, _ = unverified_practitioner

    response = client.get(path)

    assert response.status_code == 403
    assert response.json()["code"] == "otp_required"
    assert response.json()["detail"]


@pytest.mark.usefixtures("without_the_middleware")
def test_drf_lets_a_verified_session_through_without_the_middleware(db, otp_login):
    client = Client()
    otp_login(client, PractitionerFactory().user)

    assert client.get("/api/v1/appointments/").status_code == 200


def test_force_authenticate_in_tests_does_not_crash_the_check(db):
    client = APIClient()
    client.force_authenticate(user=PractitionerFactory().user)

    response = client.get("/api/v1/appointments/")

    assert response.status_code == 200
