"""/audit/: the admins' review of the access log (issue 6, part 4)."""

import csv
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from audit.access import admin_audit_view
from audit.actors import Actor, system_actor
from audit.alerts import REFRESH_KEY
from audit.models import AccessEvent, Action, ActorKind, Alert, Channel
from audit.selectors import top_actors
from audit.services import record_access
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    UserFactory,
    make_actor,
    secretary_of,
)

EVENT_LINK = re.compile(r'href="/audit/events/(\d+)/"')


@pytest.fixture(autouse=True)
def _fresh_alert_throttle():
    cache.delete(REFRESH_KEY)


@pytest.fixture
def auditor(db, client, otp_login):
    """An admin whose session passed the second factor, browsing in English."""
    admin = UserFactory(role=Role.ADMIN)
    otp_login(client, admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin


def integration_actor(integration_id: int = 7) -> Actor:
    return Actor(
        kind=ActorKind.INTEGRATION,
        channel=Channel.FHIR,
        integration_id=integration_id,
        label="DocSync",
    )


def shown_ids(response) -> set[int]:
    return {int(pk) for pk in EVENT_LINK.findall(response.content.decode())}


@pytest.fixture
def log(db):
    """Four events that differ in every filtered dimension, one of them three days old."""
    first, second = AppointmentFactory(), AppointmentFactory()
    secretary = secretary_of(second.practitioner)
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        [old] = record_access(
            actor=system_actor("notifications.deliver"), action=Action.EXPORT, appointments=[first]
        )
    [by_practitioner] = record_access(
        actor=make_actor(first.practitioner.user, channel=Channel.WEB),
        action=Action.VIEW,
        appointments=[first],
    )
    [by_secretary] = record_access(
        actor=make_actor(secretary, channel=Channel.API), action=Action.LIST, appointments=[second]
    )
    [by_integration] = record_access(
        actor=integration_actor(), action=Action.VIEW, appointments=[second]
    )
    return {
        "first": first,
        "second": second,
        "secretary": secretary,
        "old": old,
        "practitioner": by_practitioner,
        "secretary_event": by_secretary,
        "integration": by_integration,
    }


# --- Who may open the pages --------------------------------------------------------------------


def test_a_verified_admin_sees_the_events_of_the_last_24_hours(client, auditor, log):
    response = client.get(reverse("audit-events"))

    assert response.status_code == 200
    assert shown_ids(response) == {
        log["practitioner"].pk,
        log["secretary_event"].pk,
        log["integration"].pk,
    }
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    "name",
    ["audit-overview", "audit-events", "audit-alerts"],
)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.PATIENT, Role.PRACTITIONER, Role.SECRETARY])
@pytest.mark.parametrize("name", ["audit-overview", "audit-events", "audit-export"])
def test_anyone_but_an_admin_is_refused_and_the_refusal_recorded(db, client, otp_login, role, name):
    user = UserFactory(role=role)
    otp_login(client, user)  # staff pass the second factor: the role alone refuses them

    response = client.get(reverse(name))

    assert response.status_code == 404
    [event] = AccessEvent.objects.all()
    assert (event.action, event.channel, event.actor_user_id) == (
        Action.DENIED,
        Channel.ADMIN,
        user.pk,
    )
    assert event.detail == "audit log: not an admin"


def test_a_patient_cannot_acknowledge_an_alert(client, db):
    patient = PatientFactory()
    alert = Alert.objects.create(kind=Alert.Kind.OTP_FAILURES, actor_user_id=1, event_count=5)
    client.force_login(patient.user)

    response = client.post(reverse("audit-alert-acknowledge", args=[alert.pk]))

    assert response.status_code == 404
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
    assert AccessEvent.objects.get().action == Action.DENIED


def test_an_admin_without_the_second_factor_is_sent_to_the_code_prompt(client, db):
    admin = UserFactory(role=Role.ADMIN)
    TOTPDevice.objects.create(user=admin, name="authenticator", confirmed=True)
    client.force_login(admin)  # the password step only

    response = client.get(reverse("audit-events") + "?patient=3")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two-factor-verify"))
    assert "next=%2Faudit%2Fevents%2F%3Fpatient%3D3" in response["Location"]
    assert not AccessEvent.objects.filter(action=Action.LIST).exists()


def test_the_view_itself_refuses_an_unverified_admin_whatever_the_middleware(db):
    # Second line of defence: called without the two-factor middleware in front of it.
    request = RequestFactory().get("/audit/events/")
    request.user = UserFactory(role=Role.ADMIN)
    request.user.is_verified = lambda: False
    view = admin_audit_view(lambda request: pytest.fail("the view ran"))

    response = view(request)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/verify/?next=%2Faudit%2Fevents%2F"


# --- Filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda log: {"actor": log["first"].practitioner.user_id}, ["practitioner"]),
        (lambda log: {"patient": log["second"].patient_id}, ["secretary_event", "integration"]),
        (lambda log: {"practitioner": log["first"].practitioner_id}, ["practitioner"]),
        (lambda log: {"integration": 7}, ["integration"]),
        (lambda log: {"integration": 8}, []),
        (lambda log: {"action": "list"}, ["secretary_event"]),
        (lambda log: {"channel": "fhir"}, ["integration"]),
        (lambda log: {"channel": "fhir", "action": "list"}, []),
    ],
)
def test_each_filter_narrows_the_list(client, auditor, log, query, expected):
    response = client.get(reverse("audit-events"), query(log))

    assert response.status_code == 200
    assert shown_ids(response) == {log[name].pk for name in expected}


def test_the_time_range_reaches_older_events(client, auditor, log):
    local = timezone.localtime(timezone.now())
    query = {
        "date_from": (local - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M"),
        "date_to": (local - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
    }

    response = client.get(reverse("audit-events"), query)

    assert shown_ids(response) == {log["old"].pk}
    assert f'value="{query["date_from"]}"' in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"patient": "abc"},
        {"patient": "-4"},
        {"actor": "9" * 30},
        {"action": "steal"},
        {"channel": "carrier-pigeon"},
        {"date_from": "2026-13-45T99:99"},
        {"date_from": "2026-06-02T10:00", "date_to": "2026-06-01T10:00"},
        {"cursor": "not-a-cursor"},
        {"cursor": f"{'9' * 20}-1"},
    ],
)
def test_bad_filters_are_form_errors_not_crashes(client, auditor, query):
    response = client.get(reverse("audit-events"), query)

    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "0001-01-01T00:00"},
        {"date_from": "2026-06-01T10:00", "date_to": "9999-12-31T23:59"},
        {"patient": str(2**63 - 1)},
        {"cursor": "0-1"},
    ],
)
def test_extreme_but_valid_filters_work(client, auditor, log, query):
    response = client.get(reverse("audit-events"), query)

    assert response.status_code == 200


def test_pages_of_fifty_follow_one_another_without_overlap(client, auditor):
    appointment = AppointmentFactory()
    actor = make_actor(appointment.practitioner.user)
    written = {record_access(actor=actor, action=Action.VIEW)[0].pk for _ in range(60)}
    query = {"actor": appointment.practitioner.user_id}

    first = client.get(reverse("audit-events"), query)
    next_link = re.search(r'href="\?([^"]+)" rel="next"', first.content.decode())
    assert next_link
    second = client.get(reverse("audit-events") + "?" + next_link.group(1).replace("&amp;", "&"))

    assert len(shown_ids(first)) == 50
    assert len(shown_ids(second)) == 10
    assert shown_ids(first) | shown_ids(second) == written
    assert 'rel="next"' not in second.content.decode()


# --- Reading the log is recorded ---------------------------------------------------------------


def test_the_events_page_records_what_it_showed(client, auditor, log):
    client.get(reverse("audit-events"), {"practitioner": log["second"].practitioner_id})

    reads = AccessEvent.objects.filter(actor_user_id=auditor.pk)
    assert {(e.action, e.channel, e.detail) for e in reads} == {
        (Action.LIST, Channel.ADMIN, "audit log: events page")
    }
    # Both events shown name the same appointment: recorded once.
    assert [(e.appointment_id, e.patient_id) for e in reads] == [
        (log["second"].pk, log["second"].patient_id)
    ]


def test_the_event_page_shows_every_field_and_records_a_view(client, auditor, log):
    event = log["secretary_event"]

    response = client.get(reverse("audit-event", args=[event.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f"User #{log['secretary'].pk}" in html
    assert "test-request-0001" in html
    assert "not sealed yet" in html
    assert "Other events of the same request" in html
    assert f'href="/audit/events/{log["practitioner"].pk}/"' in html
    # The event and the one of the same request shown beside it, one row per appointment.
    reads = AccessEvent.objects.filter(actor_user_id=auditor.pk)
    assert {(e.action, e.appointment_id, e.detail) for e in reads} == {
        (Action.VIEW, log["second"].pk, f"audit log: event {event.pk}"),
        (Action.VIEW, log["first"].pk, f"audit log: event {event.pk}"),
    }


def test_an_unknown_event_is_not_found(client, auditor):
    assert client.get(reverse("audit-event", args=[10**12])).status_code == 404
    assert client.get("/audit/events/99999999999999999999/").status_code == 404


def test_the_overview_records_a_read_without_appointments(client, auditor, log):
    response = client.get(reverse("audit-overview"))

    assert response.status_code == 200
    [read] = AccessEvent.objects.filter(actor_user_id=auditor.pk)
    assert (read.action, read.appointment_id, read.detail) == (
        Action.LIST,
        None,
        "audit log: overview",
    )


def test_the_overview_shows_the_chart_of_the_week(client, auditor, log):
    html = client.get(reverse("audit-overview")).content.decode()

    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in html
    assert set(re.findall(r'data-channel="(\w+)"', html)) == {"web", "api", "fhir", "task"}
    assert '<table class="figures">' in html


# --- Query budgets -------------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    client.get(url)  # warm: the session's first request of a test may write it
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _add_events(count: int) -> None:
    for _ in range(count):
        appointment = AppointmentFactory()
        record_access(
            actor=make_actor(appointment.practitioner.user),
            action=Action.VIEW,
            appointments=[appointment],
        )


@pytest.mark.parametrize("name", ["audit-events", "audit-overview"])
def test_a_page_costs_the_same_queries_for_5_and_60_events(client, auditor, name):
    _add_events(5)
    few = _queries(client, reverse(name))
    _add_events(55)
    cache.delete(REFRESH_KEY)
    many = _queries(client, reverse(name))

    assert few == many
    assert many <= 16


# --- Export --------------------------------------------------------------------------------------


def _rows(response) -> list[list[str]]:
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


def test_the_export_holds_the_filtered_events_with_ids_only(client, auditor, log):
    response = client.get(reverse("audit-export"), {"practitioner": log["second"].practitioner_id})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-events-')
    header, *rows = _rows(response)
    assert header[:4] == ["id", "occurred_at", "actor_kind", "actor_user_id"]
    assert [int(row[0]) for row in rows] == [log["secretary_event"].pk, log["integration"].pk]
    column = dict(zip(header, rows[1], strict=True))
    assert column["integration_id"] == "7"
    assert column["appointment_id"] == str(log["second"].pk)
    patient = log["second"].patient
    content = "\n".join(",".join(row) for row in rows)
    for personal in (patient.first_name, patient.last_name, patient.email, patient.phone):
        assert personal not in content


def test_the_export_is_recorded_with_its_filter_and_row_count(client, auditor, log):
    patient_id = log["second"].patient_id

    _rows(client.get(reverse("audit-export"), {"patient": patient_id, "channel": "fhir"}))

    [export] = AccessEvent.objects.filter(actor_user_id=auditor.pk)
    assert (export.action, export.channel, export.patient_id) == (
        Action.EXPORT,
        Channel.ADMIN,
        patient_id,
    )
    assert export.detail.startswith("audit log export: 1 rows; from=")
    assert f"patient={patient_id} channel=fhir" in export.detail
    assert re.search(r"to=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", export.detail)


def test_the_export_neutralises_spreadsheet_formulas(client, auditor):
    actor = Actor(
        kind=ActorKind.USER, channel=Channel.WEB, user=auditor, user_agent="=HYPERLINK(1)"
    )
    record_access(actor=actor, action=Action.LIST, detail="-1+1")

    header, row = _rows(client.get(reverse("audit-export"), {"actor": auditor.pk}))

    column = dict(zip(header, row, strict=True))
    assert (column["user_agent"], column["detail"]) == ("'=HYPERLINK(1)", "'-1+1")


def test_an_invalid_export_filter_goes_back_to_the_form(client, auditor):
    response = client.get(reverse("audit-export"), {"patient": "x"})

    assert response.status_code == 302
    assert response["Location"] == reverse("audit-events") + "?patient=x"
    assert not AccessEvent.objects.filter(action=Action.EXPORT).exists()


# --- Top actors ----------------------------------------------------------------------------------


def test_top_actors_are_ranked_by_distinct_patients(client, auditor):
    appointments = AppointmentFactory.create_batch(3)
    busy = make_actor(appointments[0].practitioner.user)
    loud = make_actor(appointments[1].practitioner.user)
    record_access(actor=busy, action=Action.LIST, appointments=appointments)
    for _ in range(10):
        record_access(actor=loud, action=Action.VIEW, appointments=[appointments[1]])
    record_access(actor=integration_actor(), action=Action.LIST, appointments=appointments[:2])
    with time_machine.travel(timezone.now() - timedelta(hours=25)):
        record_access(actor=loud, action=Action.LIST, appointments=appointments)  # too old

    ranking = top_actors(now=timezone.now())

    assert [(a.user_id, a.integration_id, a.patients, a.events) for a in ranking] == [
        (busy.user.pk, None, 3, 3),
        (None, 7, 2, 2),
        (loud.user.pk, None, 1, 10),
    ]
    html = client.get(reverse("audit-overview")).content.decode()
    assert html.index(f"User #{busy.user.pk}") < html.index("Integration #7")
    assert html.index("Integration #7") < html.index(f"User #{loud.user.pk}")
    assert f"?actor={busy.user.pk}&amp;date_from=" in html


# --- Alerts --------------------------------------------------------------------------------------


def test_opening_the_alerts_page_runs_the_rules(client, auditor):
    outsider = AppointmentFactory()
    stranger = secretary_of(AppointmentFactory().practitioner)
    record_access(actor=make_actor(stranger), action=Action.VIEW, appointments=[outsider])

    response = client.get(reverse("audit-alerts"))

    [alert] = Alert.objects.all()
    assert (alert.kind, alert.actor_user_id) == (Alert.Kind.OUTSIDE_AGENDA, stranger.pk)
    assert "Staff read patients outside their agendas" in response.content.decode()


def test_an_admin_acknowledges_an_alert(client, auditor):
    alert = Alert.objects.create(kind=Alert.Kind.OTP_FAILURES, actor_user_id=3, event_count=6)

    response = client.post(reverse("audit-alert-acknowledge", args=[alert.pk]), follow=True)

    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by_id) == (Alert.Status.ACKNOWLEDGED, auditor.pk)
    assert alert.acknowledged_at is not None
    assert f"Alert #{alert.pk} acknowledged." in response.content.decode()
    assert AccessEvent.objects.filter(
        actor_user_id=auditor.pk, detail=f"audit log: alert {alert.pk} acknowledged"
    ).exists()
    again = client.post(reverse("audit-alert-acknowledge", args=[alert.pk]))
    assert again.status_code == 404


def test_acknowledging_needs_a_post(client, auditor):
    alert = Alert.objects.create(kind=Alert.Kind.OTP_FAILURES, actor_user_id=3, event_count=6)

    assert client.get(reverse("audit-alert-acknowledge", args=[alert.pk])).status_code == 405
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


# --- No personal data in what the pages write ----------------------------------------------------


def test_the_events_written_by_the_pages_hold_no_personal_data(client, auditor, log):
    for name in ("audit-overview", "audit-events", "audit-alerts"):
        client.get(reverse(name))
    client.get(reverse("audit-event", args=[log["integration"].pk]))
    _rows(client.get(reverse("audit-export"), {"patient": log["first"].patient_id}))

    people = [log["first"].patient, log["second"].patient]
    personal = [value for p in people for value in (p.first_name, p.last_name, p.email, p.phone)]
    personal += [log["first"].practitioner.last_name, auditor.email]
    written = AccessEvent.objects.filter(actor_user_id=auditor.pk)
    assert written.count() >= 5
    for event in written:
        assert not any(value in event.detail for value in personal), event.detail
        assert not any(value in event.actor_label for value in personal)
