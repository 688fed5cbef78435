"""/me/access-log/: who accessed my appointments, in plain language (issue 6, part 5)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.actors import Actor, system_actor
from audit.models import AccessEvent, Action, ActorKind, Channel
from audit.selectors import record_review
from audit.services import AppointmentRef, record_access, record_denial
from tests.factories import (
    AppointmentFactory,
    PatientFactory,
    RelativeFactory,
    UserFactory,
    make_actor,
    secretary_of,
)

URL = "/me/access-log/"


@pytest.fixture
def mine(db, client):
    """A patient browsing in English, with an appointment, logged in."""
    appointment = AppointmentFactory()
    client.force_login(appointment.patient.user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return appointment


def doctor(appointment) -> str:
    return f"Dr {appointment.practitioner.first_name} {appointment.practitioner.last_name}"


def entries(response) -> list[str]:
    """Each entry's text, whitespace collapsed, tags removed."""
    lists = re.findall(r'<ol class="access-log">(.*?)</ol>', response.content.decode(), re.S)
    items = [item for block in lists for item in re.findall(r"<li\b[^>]*>(.*?)</li>", block, re.S)]
    texts = [re.sub(r"<[^>]+>", " ", item) for item in items]
    return [" ".join(text.split()) for text in texts]


def sentence(response) -> str:
    [entry] = entries(response)
    return entry.split(" ", 1)[1]  # without the time


def test_the_url_is_the_documented_one():
    assert reverse("access-log") == URL


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("practitioner", "{doctor} viewed an appointment with {doctor}"),
        ("secretary", "The secretary of {doctor} viewed an appointment with {doctor}"),
        ("admin", "Creneau support viewed an appointment with {doctor}"),
        ("self", "You viewed an appointment with {doctor}"),
        (
            "system",
            "Creneau (automatic reminders and messages) viewed an appointment with {doctor}",
        ),
        ("other_task", "Creneau (automatic processing) viewed an appointment with {doctor}"),
        (
            "integration",
            "A connected app (#7) acting for {doctor} viewed an appointment with {doctor}",
        ),
    ],
)
def test_each_kind_of_actor_is_named_in_plain_language(client, mine, who, expected):
    actors = {
        "practitioner": lambda: make_actor(mine.practitioner.user),
        "secretary": lambda: make_actor(secretary_of(mine.practitioner)),
        "admin": lambda: make_actor(UserFactory(role=Role.ADMIN)),
        "self": lambda: make_actor(mine.patient.user),
        "system": lambda: system_actor("notifications.deliver"),
        "other_task": lambda: system_actor("purge_expired"),
        "integration": lambda: Actor(
            kind=ActorKind.INTEGRATION, channel=Channel.FHIR, integration_id=7, label="Doc"
        ),
    }
    record_access(actor=actors[who](), action=Action.VIEW, appointments=[mine])

    response = client.get(URL)

    assert response.status_code == 200
    assert sentence(response) == expected.format(doctor=doctor(mine))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (Action.LIST, "saw an appointment with {doctor} in a list"),
        (Action.CREATE, "booked an appointment with {doctor}"),
        (Action.CANCEL, "cancelled an appointment with {doctor}"),
        (Action.RESCHEDULE, "moved an appointment with {doctor}"),
        (Action.STATUS, "updated the status of an appointment with {doctor}"),
        (Action.EXPORT, "exported an appointment with {doctor}"),
    ],
)
def test_reads_and_changes_are_told_apart(client, mine, action, expected):
    record_access(actor=make_actor(mine.practitioner.user), action=action, appointments=[mine])

    assert sentence(client.get(URL)) == f"{doctor(mine)} " + expected.format(doctor=doctor(mine))


def test_a_search_of_the_practice_names_the_patient_file(client, mine):
    ref = AppointmentRef(id=None, patient_id=mine.patient_id, practitioner_id=mine.practitioner_id)
    secretary = secretary_of(mine.practitioner)
    record_access(actor=make_actor(secretary), action=Action.SEARCH, appointments=[ref])

    assert sentence(client.get(URL)) == (
        f"The secretary of {doctor(mine)} found you in a search among the patients of "
        f"{doctor(mine)}"
    )


def test_a_refusal_by_someone_else_is_shown_as_refused(client, mine):
    intruder = PatientFactory().user
    record_denial(actor=make_actor(intruder), appointment_id=mine.pk, detail="not_found")

    response = client.get(URL)

    assert sentence(response) == (
        "Another Creneau user tried to open one of your appointments and was refused"
    )
    assert '<li class="refused">' in response.content.decode()


def test_support_reading_the_audit_log_is_shown(client, mine):
    admin = Actor(kind=ActorKind.USER, channel=Channel.ADMIN, user=UserFactory(role=Role.ADMIN))
    [event] = record_access(
        actor=make_actor(mine.practitioner.user), action=Action.VIEW, appointments=[mine]
    )
    record_review(actor=admin, page="events page", events=[event])

    assert entries(client.get(URL))[0].split(" ", 1)[1] == (
        "Creneau support checked the record of who accessed your appointments"
    )


def test_a_relatives_appointments_are_in_the_log(client, mine):
    relative = RelativeFactory(managed_by=mine.patient)
    theirs = AppointmentFactory(patient=mine.patient, relative=relative)
    record_access(
        actor=make_actor(theirs.practitioner.user), action=Action.VIEW, appointments=[theirs]
    )

    assert (
        sentence(client.get(URL)) == f"{doctor(theirs)} viewed an appointment with {doctor(theirs)}"
    )


def test_another_patients_accesses_are_never_shown(client, mine):
    other = AppointmentFactory()
    record_access(
        actor=make_actor(other.practitioner.user), action=Action.VIEW, appointments=[other]
    )
    record_access(actor=make_actor(other.patient.user), action=Action.LIST, appointments=[other])
    record_denial(actor=make_actor(mine.patient.user), appointment_id=other.pk, detail="not_found")
    record_access(
        actor=make_actor(mine.patient.user), action=Action.DENIED, detail="otp wrong code"
    )

    response = client.get(URL)

    assert entries(response) == []
    assert "Nobody has accessed your appointments yet." in response.content.decode()


def test_no_ip_nor_user_agent_is_shown(client, mine):
    actor = Actor(
        kind=ActorKind.USER,
        channel=Channel.WEB,
        user=mine.practitioner.user,
        ip="203.0.113.77",
        user_agent="SecretBrowser/9.1",
        request_id="req-abcdef-123456",
    )
    record_access(actor=actor, action=Action.VIEW, appointments=[mine])

    html = client.get(URL).content.decode()

    for private in ("203.0.113.77", "SecretBrowser", "req-abcdef-123456"):
        assert private not in html


def test_entries_are_grouped_by_day_newest_first(client, mine):
    actor = make_actor(mine.practitioner.user)
    for days_ago in (2, 0, 2):
        with time_machine.travel(timezone.now() - timedelta(days=days_ago)):
            record_access(actor=actor, action=Action.VIEW, appointments=[mine])

    html = client.get(URL).content.decode()

    days = re.findall(r'<h2 id="day-\d+"><time datetime="([\d-]+)">', html)
    today = timezone.localdate()
    assert days == [str(today), str(today - timedelta(days=2))]
    assert len(entries(client.get(URL))) == 3


def test_a_long_log_is_paginated(client, mine):
    actor = make_actor(mine.practitioner.user)
    for _ in range(55):
        record_access(actor=actor, action=Action.VIEW, appointments=[mine])
    record_denial(actor=make_actor(UserFactory()), appointment_id=mine.pk, detail="not_found")

    first = client.get(URL)
    link = re.search(r'href="\?before=([\d-]+)" rel="next"', first.content.decode())
    assert link
    second = client.get(URL, {"before": link.group(1)})

    assert len(entries(first)) == 50
    assert len(entries(second)) == 6
    assert "refused" in entries(first)[0]  # the newest
    assert 'rel="next"' not in second.content.decode()


def test_a_mangled_page_link_shows_the_first_page(client, mine):
    record_access(actor=make_actor(mine.practitioner.user), action=Action.VIEW, appointments=[mine])

    response = client.get(URL, {"before": "<script>"})

    assert response.status_code == 200
    assert len(entries(response)) == 1


def test_the_page_costs_the_same_queries_for_5_and_60_events(client, mine):
    def add(count: int) -> None:
        for _ in range(count):
            other = AppointmentFactory(patient=mine.patient)  # a new practitioner each time
            record_access(
                actor=make_actor(secretary_of(other.practitioner)),
                action=Action.LIST,
                appointments=[other],
            )

    def measure() -> int:
        client.get(URL)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    add(5)
    few = measure()
    add(55)
    many = measure()

    assert few == many
    assert many <= 8


def test_viewing_ones_access_log_writes_nothing(client, mine):
    client.get(URL)

    assert AccessEvent.objects.count() == 0


def test_staff_have_no_access_log(client, otp_login, db):
    practitioner = AppointmentFactory().practitioner
    otp_login(client, practitioner.user)

    assert client.get(URL).status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_secretary_who_does_not_work_for_the_practitioner_is_not_called_theirs(client, mine):
    stranger = secretary_of(AppointmentFactory().practitioner)
    record_access(actor=make_actor(stranger), action=Action.VIEW, appointments=[mine])

    assert sentence(client.get(URL)) == (
        f"A practice secretary viewed an appointment with {doctor(mine)}"
    )


def test_what_the_patient_did_is_told_in_the_second_person(client, mine):
    record_access(actor=make_actor(mine.patient.user), action=Action.CANCEL, appointments=[mine])

    assert sentence(client.get(URL)) == f"You cancelled an appointment with {doctor(mine)}"
