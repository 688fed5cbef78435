"""The REST API against its own OpenAPI schema (issue #7, part 6): schemathesis generates requests
for every operation of /api/schema/ and sends them through the WSGI application in-process, as a
patient and anonymously: no 500s, and every response (status, content type, headers, body)
conforms to the schema. Then the schema itself, and anonymous throttling."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
import yaml
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.factories import AppointmentFactory, RelativeFactory

# What a schema cannot say (see failures_of).
UNCHECKED = [positive_data_acceptance, negative_data_rejection]
CSRF = "c" * 32  # a cookie secret and its header form (Django accepts the unmasked secret)
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class InProcessApp:
    """Django's WSGI application, for requests made inside a test's transaction: like Django's
    test client, it keeps the request's end from closing the test's connection."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            body = b"".join(response)
            response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


@pytest.fixture
def api_schema(clinic, settings):
    # Throttling is tested on its own below: here it would only turn examples into 429s.
    settings.API_ANONYMOUS_RATE = None
    settings.API_USER_RATE = None
    relative = RelativeFactory(managed_by=clinic.patient)
    for days, who in ((2, None), (3, relative)):
        AppointmentFactory(
            practitioner=clinic.practitioner,
            reason=clinic.reason,
            patient=clinic.patient,
            relative=who,
            start=clinic.slot + timedelta(days=days),
        )
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", InProcessApp())
    # Text with NUL characters is refused (400) by design: DRF's CharField, PostgreSQL's text.
    schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    return schema


@dataclass(frozen=True)
class Credentials:
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def patient_session(clinic) -> Credentials:
    client = Client()
    client.force_login(clinic.patient.user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return Credentials(
        cookies={django_settings.SESSION_COOKIE_NAME: session, "csrftoken": CSRF},
        headers={"X-CSRFToken": CSRF},
    )


def real_path_ids(clinic) -> dict[str, int]:
    appointment = clinic.patient.appointments.order_by("pk").first()
    return {"practitioner_id": clinic.practitioner.pk, "appointment_id": appointment.pk}


def failures_of(schema: Any, *, mode: GenerationMode, who: Credentials, ids: dict) -> list:
    """Every operation, `EXAMPLES` generated requests each: what failed, by operation.

    Every response is checked: no 500, and its status, content type, headers and body as the
    schema documents them. Two checks are left out, for what a schema cannot say:
    - that valid data is accepted: ids of the right shape may name nothing (`?reason=69` of a
      practitioner without that reason), which the contract answers with a field error (400);
    - that invalid data is refused: for an optional query parameter DRF reads an empty value as
      absent (`?city=` is no city filter).
    Invalid data (negative mode) goes in the query and the body, on real ids: an id that is not
    digits never reaches the API (the route refuses it with the site's 404 page).
    """
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    for operation in operations:
        kwargs: dict[str, Any] = {"generation_mode": mode, "cookies": who.cookies}
        if mode == GenerationMode.NEGATIVE:
            if not (list(operation.query) or list(operation.body)):
                continue  # nothing but the id to make invalid
            kwargs["path_parameters"] = {p.name: ids[p.name] for p in operation.path_parameters}

        @EXAMPLES
        @given(case=operation.as_strategy(**kwargs))
        def check(case: Any) -> None:
            case.call_and_validate(headers=who.headers, excluded_checks=UNCHECKED)

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:  # collected, reported below
            failures.append(f"{operation.label}: {failure}")
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("who", ["patient", "anonymous"])
def test_the_api_conforms_to_its_schema(api_schema, clinic, mode, who):
    credentials = patient_session(clinic) if who == "patient" else Credentials()

    failures = failures_of(api_schema, mode=mode, who=credentials, ids=real_path_ids(clinic))

    assert not failures, "\n\n".join(failures)


# --- The schema itself ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_documents_every_endpoint_of_the_contract(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post"}
    }
    assert operations == {
        ("GET", "/api/v1/specialties/"),
        ("GET", "/api/v1/practitioners/"),
        ("GET", "/api/v1/practitioners/{practitioner_id}/"),
        ("GET", "/api/v1/practitioners/{practitioner_id}/slots/"),
        ("GET", "/api/v1/appointments/"),
        ("POST", "/api/v1/appointments/"),
        ("GET", "/api/v1/appointments/{appointment_id}/"),
        ("POST", "/api/v1/appointments/{appointment_id}/cancel/"),
        ("POST", "/api/v1/appointments/{appointment_id}/reschedule/"),
        ("POST", "/api/v1/appointments/{appointment_id}/status/"),
    }
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["cookieAuth"]["in"] == "cookie"
    page = document["components"]["schemas"]["AppointmentPage"]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}


def test_the_schema_generates_without_warnings(capsys):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)

    assert not GENERATOR_STATS, capsys.readouterr().err


# --- Anonymous throttling -----------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_callers_are_throttled_with_retry_after(client, settings):
    from django.core.cache import cache

    settings.API_ANONYMOUS_RATE = "3/minute"
    client_ip = {"REMOTE_ADDR": "192.0.2.77"}
    cache.delete("throttle_anon_192.0.2.77")

    statuses = [client.get("/api/v1/specialties/", **client_ip).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/specialties/", **client_ip)
    assert refused.json()["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert client.get("/api/v1/specialties/", REMOTE_ADDR="192.0.2.78").status_code == 200
    cache.delete("throttle_anon_192.0.2.77")
