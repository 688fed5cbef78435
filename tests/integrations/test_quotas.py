"""Quotas per integration (issue #7, part 5): requests per minute and distinct patients per hour,
counted atomically in Redis and in the database fallback (each test runs on both), enforced by
the FHIR API with 429 and Retry-After; a harvester gets at most its quota's worth of patients."""

import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from audit.models import AccessEvent, Action, Alert
from integrations.models import Integration, QuotaPatient, QuotaWindow
from integrations.quotas import (
    QuotaExceeded,
    admit_patients,
    check_request_quota,
    current_usage,
    purge_quota_windows,
    reset_quotas,
)
from integrations.scopes import APPOINTMENT_READ, SLOT_READ
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory
from tests.integrations.support import bearer, new_integration, token_for

# 10:00:20 UTC: 40 seconds left in the minute, 59:40 in the hour.
MOMENT = datetime.fromisoformat("2026-06-01T10:00:20+00:00")
BACKENDS = ["redis", "database"]


@pytest.fixture(params=BACKENDS)
def backend(request, settings):
    settings.INTEGRATIONS_QUOTA_BACKEND = request.param
    return request.param


@pytest.fixture
def at_moment():
    with time_machine.travel(MOMENT, tick=False):
        yield MOMENT


def quota_integration(**limits) -> Integration:
    return new_integration(**limits).integration


# --- Requests per minute ------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_beyond_the_minute_quota_are_refused_until_the_next_minute(backend, at_moment):
    integration = quota_integration(requests_per_minute=3)
    for _ in range(3):
        check_request_quota(integration)

    with pytest.raises(QuotaExceeded) as refused:
        check_request_quota(integration)

    assert refused.value.status == 429
    assert refused.value.retry_after == 40
    assert current_usage(integration)["requests"] == 4
    with time_machine.travel(MOMENT + timedelta(seconds=40), tick=False):
        check_request_quota(integration)  # a new minute


@pytest.mark.django_db
def test_each_integration_has_its_own_count(backend, at_moment):
    first, second = (
        quota_integration(requests_per_minute=1),
        quota_integration(requests_per_minute=1),
    )
    check_request_quota(first)

    check_request_quota(second)

    with pytest.raises(QuotaExceeded):
        check_request_quota(first)


# --- Distinct patients per hour -----------------------------------------------------------------


@pytest.mark.django_db
def test_patients_are_admitted_up_to_the_hours_quota_all_or_nothing(backend, at_moment):
    integration = quota_integration(patients_per_hour=5)
    admit_patients(integration, [1, 2, 3])
    admit_patients(integration, [3, 4, None])  # 3 again: not a new patient

    with pytest.raises(QuotaExceeded) as refused:
        admit_patients(integration, [5, 6])  # 6 patients: one too many, so neither counts

    assert refused.value.retry_after == 3580
    assert current_usage(integration)["patients"] == 4
    admit_patients(integration, [5])
    admit_patients(integration, [1, 2, 3, 4, 5])  # all known: nothing new
    with pytest.raises(QuotaExceeded):
        admit_patients(integration, [6])
    with time_machine.travel(MOMENT + timedelta(hours=1), tick=False):
        admit_patients(integration, [6, 7, 8, 9, 10])  # a new hour


@pytest.mark.django_db
def test_a_response_with_more_patients_than_the_quota_is_refused_at_once(backend, at_moment):
    integration = quota_integration(patients_per_hour=2)

    with pytest.raises(QuotaExceeded):
        admit_patients(integration, [1, 2, 3])

    assert current_usage(integration)["patients"] == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_clients_together_get_no_more_than_the_quota(backend):
    integration = quota_integration(patients_per_hour=50, requests_per_minute=10_000)
    admitted: list[int] = []
    barrier = threading.Barrier(8)

    def client(worker: int) -> None:
        barrier.wait()
        try:
            for batch in range(10):
                ids = [worker * 1000 + batch * 10 + n for n in range(5)]
                try:
                    admit_patients(integration, ids)
                except QuotaExceeded:
                    continue
                admitted.extend(ids)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(admitted)) == 50  # 8 x 50 asked, exactly the quota let through
    assert current_usage(integration)["patients"] == 50


# --- Upkeep and failure -------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_redis_the_database_counts(settings, at_moment):
    settings.INTEGRATIONS_QUOTA_BACKEND = "redis"
    settings.INTEGRATIONS_QUOTA_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    integration = quota_integration(requests_per_minute=1, patients_per_hour=1)

    check_request_quota(integration)
    admit_patients(integration, [1])

    with pytest.raises(QuotaExceeded):
        check_request_quota(integration)
    with pytest.raises(QuotaExceeded):
        admit_patients(integration, [2])
    assert QuotaWindow.objects.filter(integration=integration).count() == 2


@pytest.mark.django_db
def test_reset_forgets_the_current_windows(backend, at_moment):
    integration = quota_integration(requests_per_minute=1, patients_per_hour=1)
    check_request_quota(integration)
    admit_patients(integration, [1])

    reset_quotas(integration.pk)

    check_request_quota(integration)
    admit_patients(integration, [2])


@pytest.mark.django_db
def test_database_windows_older_than_a_day_are_purged(settings):
    settings.INTEGRATIONS_QUOTA_BACKEND = "database"
    integration = quota_integration()
    with time_machine.travel(timezone.now() - timedelta(days=2), tick=False):
        admit_patients(integration, [1, 2])
        check_request_quota(integration)
    admit_patients(integration, [3])

    purge_quota_windows()

    assert list(QuotaPatient.objects.values_list("patient_id", flat=True)) == [3]
    assert QuotaWindow.objects.count() == 1


# --- Through the FHIR API -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_fhir_api_answers_429_with_retry_after_past_the_request_quota(
    client, backend, at_moment
):
    created = new_integration(PractitionerFactory(), requests_per_minute=3)
    token = token_for(client, created, scope=SLOT_READ)

    statuses = [client.get("/fhir/r4/Practitioner", **bearer(token)).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = client.get("/fhir/r4/Practitioner", **bearer(token))
    assert response["Retry-After"] == "40"
    assert response.json()["issue"][0]["code"] == "throttled"


@pytest.mark.django_db
def test_a_request_quota_refusal_is_recorded_and_alerted(client, backend, at_moment):
    created = new_integration(PractitionerFactory(), requests_per_minute=1)
    token = token_for(client, created, scope=SLOT_READ)
    client.get("/fhir/r4/Practitioner", **bearer(token))

    refused = client.get("/fhir/r4/Practitioner", **bearer(token))

    assert refused.status_code == 429
    denied = AccessEvent.objects.get(action=Action.DENIED, integration_id=created.integration.pk)
    assert denied.detail == "quota requests per minute"
    alert = Alert.objects.get(kind=Alert.Kind.QUOTA, integration_id=created.integration.pk)
    assert alert.event_count == 1


@pytest.mark.django_db
def test_the_patients_quota_caps_what_an_appointment_search_returns(client, backend, at_moment):
    practitioner = PractitionerFactory()
    created = new_integration(practitioner, patients_per_hour=3)
    token = token_for(client, created, scope=APPOINTMENT_READ)
    first = MOMENT + timedelta(days=1)
    for n in range(6):
        AppointmentFactory(
            practitioner=practitioner,
            patient=PatientFactory(),
            start=first + timedelta(hours=n),
            end=first + timedelta(hours=n, minutes=30),
        )
    url = f"/fhir/r4/Appointment?practitioner={practitioner.pk}&date=ge2026-06-01&_count=2"

    page_one = client.get(url, **bearer(token))
    page_two = client.get(f"{url}&_getpagesoffset=2", **bearer(token))

    assert page_one.status_code == 200
    assert len(page_one.json()["entry"]) == 2
    assert page_two.status_code == 429  # 4 distinct patients > 3: nothing of the page returned
    assert page_two["Retry-After"] == "3580"
    assert "entry" not in page_two.json()
    events = AccessEvent.objects.filter(integration_id=created.integration.pk)
    assert events.filter(action=Action.SEARCH).count() == 2  # page one only
    assert events.filter(action=Action.DENIED, detail="quota patients per hour").count() == 1
    assert current_usage(created.integration)["patients"] == 2
