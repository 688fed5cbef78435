"""/agenda/integrations/ (issue #7, part 2): the practitioner's connected apps, their scopes, last
read and distinct patients read in 24 h and 30 days; granting with a fresh second-factor code;
one-click revoke. The practitioner's alone: secretaries get 403, another practitioner's grant 404.
"""

from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.actors import Actor
from audit.models import AccessEvent, Action, ActorKind, Channel
from audit.services import record_access
from integrations.grants import granted_practitioner_ids
from integrations.models import Grant, Integration
from integrations.scopes import ALL_SCOPES, APPOINTMENT_READ, PATIENT_READ, SLOT_READ
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, secretary_of
from tests.integrations.support import code_for, new_integration, wrong_code_for

PAGE = "/agenda/integrations/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _in_english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # French is the default: assert in English


@pytest.fixture
def practitioner():
    return PractitionerFactory()


@pytest.fixture
def device(client, practitioner, otp_login):
    return otp_login(client, practitioner.user)


def revoke_url(grant: Grant) -> str:
    return f"{PAGE}grants/{grant.pk}/revoke/"


def integration_actor(integration: Integration) -> Actor:
    return Actor(
        kind=ActorKind.INTEGRATION,
        channel=Channel.FHIR,
        label=integration.name,
        integration_id=integration.pk,
        scopes=frozenset(ALL_SCOPES),
    )


def read_at(moment: datetime, integration: Integration, appointments, action=Action.SEARCH):
    with time_machine.travel(moment, tick=False):
        record_access(
            actor=integration_actor(integration), action=action, appointments=appointments
        )


def appointments_of(practitioner, patients) -> list:
    """One appointment per patient, an hour apart (an agenda holds no overlap)."""
    first = timezone.now() + timedelta(days=3)
    return [
        AppointmentFactory(
            practitioner=practitioner, patient=patient, start=first + timedelta(hours=n)
        )
        for n, patient in enumerate(patients)
    ]


def grant_form(integration: Integration, code: str, **fields) -> dict:
    return {
        "integration": integration.pk,
        "scopes": [SLOT_READ, APPOINTMENT_READ],
        "until": "",
        "code": code,
        **fields,
    }


# --- The list -----------------------------------------------------------------------------------


def test_the_page_lists_the_apps_granted_with_their_scopes(client, practitioner, device):
    granted = new_integration(practitioner, scopes=[SLOT_READ, PATIENT_READ], name="AgendaPro")
    new_integration(PractitionerFactory(), name="Someone else's")

    response = client.get(PAGE)

    assert response.status_code == 200
    listed = response.content.decode().split('id="grant-heading"')[0]  # not the grant form
    assert "AgendaPro" in listed
    assert SLOT_READ in listed
    assert PATIENT_READ in listed
    assert APPOINTMENT_READ not in listed
    assert "Someone else" not in listed
    assert f'action="{revoke_url(granted.integration.grants.get())}"' in listed


def test_distinct_patients_read_are_counted_over_24_hours_and_30_days(client, practitioner, device):
    integration = new_integration(practitioner).integration
    other_integration = new_integration(practitioner).integration
    now = timezone.now()
    ann, bob, cat, dan = (PatientFactory() for _ in range(4))
    patients = (ann, bob, cat, dan)
    mine = dict(zip(patients, appointments_of(practitioner, patients), strict=True))
    colleague_appointment = AppointmentFactory(practitioner=PractitionerFactory(), patient=ann)
    read_at(now - timedelta(hours=2), integration, [mine[ann], mine[bob]])
    read_at(now - timedelta(hours=1), integration, [mine[ann]], action=Action.VIEW)  # again
    read_at(now - timedelta(days=10), integration, [mine[cat]])
    read_at(now - timedelta(days=40), integration, [mine[dan]])  # too old
    read_at(now - timedelta(hours=3), other_integration, [mine[dan]])  # another app
    read_at(now - timedelta(hours=3), integration, [colleague_appointment])  # another agenda
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        record_access(
            actor=integration_actor(integration),
            action=Action.DENIED,
            appointments=[mine[dan]],
            detail="not_found",
        )

    response = client.get(PAGE)

    apps = {app.integration.pk: app for app in response.context["apps"]}
    assert (apps[integration.pk].patients_day, apps[integration.pk].patients_month) == (2, 3)
    assert apps[integration.pk].last_read == now - timedelta(hours=1)
    assert (apps[other_integration.pk].patients_day, apps[other_integration.pk].patients_month) == (
        1,
        1,
    )
    assert "2 in the last 24 hours, 3 in the last 30 days" in response.content.decode()


def test_a_suspended_app_says_so(client, practitioner, device):
    new_integration(practitioner, status=Integration.Status.SUSPENDED)

    html = client.get(PAGE).content.decode()

    assert "Suspended by Creneau" in html


@pytest.mark.parametrize("apps", [1, 6])
def test_the_page_costs_the_same_queries_for_one_app_or_six(
    client, practitioner, device, django_assert_max_num_queries, apps
):
    for appointment in appointments_of(practitioner, [PatientFactory() for _ in range(apps)]):
        read_at(timezone.now(), new_integration(practitioner).integration, [appointment])

    with django_assert_max_num_queries(9):
        response = client.get(PAGE)

    assert len(response.context["apps"]) == apps


# --- Granting ---------------------------------------------------------------------------------


def test_granting_with_a_fresh_code_connects_the_app(client, practitioner, device):
    integration = new_integration().integration

    response = client.post(
        PAGE, grant_form(integration, code_for(device), until="2099-03-31"), follow=True
    )

    assert response.redirect_chain == [(PAGE, 302)]
    grant = Grant.objects.get(integration=integration, practitioner=practitioner)
    assert grant.scopes == [SLOT_READ, APPOINTMENT_READ]
    assert grant.granted_by == practitioner.user
    # Until the end of that day on the practice's clock (Paris, UTC+2 in summer).
    assert grant.expires_at == datetime.fromisoformat("2099-03-31T22:00:00+00:00")
    assert granted_practitioner_ids(
        integration_id=integration.pk, scope=APPOINTMENT_READ, token_scopes=frozenset(ALL_SCOPES)
    ) == [practitioner.pk]
    assert f"{integration.name} is connected to your agenda." in response.content.decode()


def test_a_wrong_code_is_refused_and_recorded(client, practitioner, device):
    integration = new_integration().integration

    response = client.post(PAGE, grant_form(integration, wrong_code_for(device)))

    assert response.status_code == 400
    assert "This code is not valid or was already used." in response.content.decode()
    assert not Grant.objects.exists()
    event = AccessEvent.objects.get(action=Action.DENIED)
    assert event.actor_user_id == practitioner.user.pk
    assert event.detail == "otp wrong code (re-authentication)"


@pytest.mark.parametrize("code", ["", "12345", "backup-code"])
def test_granting_needs_a_six_digit_code(client, practitioner, device, code):
    integration = new_integration().integration

    response = client.post(PAGE, grant_form(integration, code))

    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_a_code_works_once(client, practitioner, device):
    first, second = new_integration().integration, new_integration().integration
    code = code_for(device)
    assert client.post(PAGE, grant_form(first, code)).status_code == 302

    response = client.post(PAGE, grant_form(second, code))

    assert response.status_code == 400
    assert not Grant.objects.filter(integration=second).exists()
    assert AccessEvent.objects.get(action=Action.DENIED).detail == (
        "otp replayed code (re-authentication)"
    )


def test_the_code_is_not_spent_on_an_otherwise_invalid_form(client, practitioner, device):
    integration = new_integration().integration
    code = code_for(device)

    invalid = client.post(PAGE, grant_form(integration, code, scopes=[]))
    valid = client.post(PAGE, grant_form(integration, code))

    assert invalid.status_code == 400
    assert valid.status_code == 302


def test_a_suspended_app_cannot_be_granted(client, practitioner, device):
    integration = new_integration(status=Integration.Status.SUSPENDED).integration

    response = client.post(PAGE, grant_form(integration, code_for(device)))

    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_a_past_date_is_refused(client, practitioner, device):
    integration = new_integration().integration

    response = client.post(PAGE, grant_form(integration, code_for(device), until="2020-01-01"))

    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_granting_again_replaces_the_grant_and_keeps_the_old_one_revoked(
    client, practitioner, device
):
    created = new_integration(practitioner, scopes=[SLOT_READ])

    response = client.post(
        PAGE, grant_form(created.integration, code_for(device), scopes=[APPOINTMENT_READ])
    )

    assert response.status_code == 302
    old, new = Grant.objects.filter(practitioner=practitioner).order_by("pk")
    assert old.revoked_at is not None
    assert old.revoked_by == practitioner.user
    assert new.revoked_at is None
    assert new.scopes == [APPOINTMENT_READ]


# --- Revoking ---------------------------------------------------------------------------------


def test_one_click_revokes(client, practitioner, device):
    grant = new_integration(practitioner).integration.grants.get()

    response = client.post(revoke_url(grant))

    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == practitioner.user
    assert (
        granted_practitioner_ids(
            integration_id=grant.integration_id, scope=SLOT_READ, token_scopes=frozenset(ALL_SCOPES)
        )
        == []
    )
    assert client.get(PAGE).context["apps"] == []


def test_another_practitioners_grant_is_404_and_stays(client, practitioner, device):
    grant = new_integration(PractitionerFactory()).integration.grants.get()

    response = client.post(revoke_url(grant))

    assert response.status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert AccessEvent.objects.filter(action=Action.DENIED, actor_user_id=practitioner.user.pk)


def test_revoking_needs_a_post(client, practitioner, device):
    grant = new_integration(practitioner).integration.grants.get()

    assert client.get(revoke_url(grant)).status_code == 405
    grant.refresh_from_db()
    assert grant.revoked_at is None


# --- Who may open it ----------------------------------------------------------------------------


def test_a_secretary_even_managing_the_agenda_gets_403(client, practitioner, otp_login):
    grant = new_integration(practitioner).integration.grants.get()
    otp_login(client, secretary_of(practitioner))

    assert client.get(PAGE).status_code == 403
    assert client.post(revoke_url(grant)).status_code == 403
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_session_without_its_second_factor_is_sent_to_the_code_prompt(client, practitioner):
    client.force_login(practitioner.user)

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/")
    assert "next=" in response["Location"]
