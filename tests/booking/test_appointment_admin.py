"""Appointments in the Django admin: read-only, and every read audited on the admin channel."""

import pytest
from django.conf import settings

from accounts.models import Role
from audit.models import AccessEvent, Action, Channel
from booking.models import Appointment
from tests.factories import AppointmentFactory, UserFactory

ADMIN = f"/{settings.ADMIN_URL}booking/appointment/"


@pytest.fixture
def admin_user(db):
    return UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)


def events(action: str) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(action=action, channel=Channel.ADMIN).order_by("id"))


def test_the_changelist_records_one_list_event_per_row_shown(client, otp_login, admin_user):
    appointments = AppointmentFactory.create_batch(3)
    otp_login(client, admin_user)

    response = client.get(ADMIN)

    assert response.status_code == 200
    listed = events(Action.LIST)
    assert sorted(event.appointment_id for event in listed) == sorted(a.pk for a in appointments)
    assert {event.actor_user_id for event in listed} == {admin_user.pk}
    assert {event.actor_role for event in listed} == {Role.ADMIN}


def test_the_changelist_shows_ids_never_names(client, otp_login, admin_user):
    appointment = AppointmentFactory()
    otp_login(client, admin_user)

    page = client.get(ADMIN).content.decode()

    assert appointment.patient.last_name not in page
    assert appointment.patient.first_name not in page


def test_the_detail_page_records_a_view(client, otp_login, admin_user):
    appointment = AppointmentFactory()
    otp_login(client, admin_user)

    response = client.get(f"{ADMIN}{appointment.pk}/change/")

    assert response.status_code == 200
    [viewed] = events(Action.VIEW)
    assert (viewed.appointment_id, viewed.patient_id) == (appointment.pk, appointment.patient_id)


def test_the_csv_export_records_what_it_wrote(client, otp_login, admin_user):
    chosen = AppointmentFactory.create_batch(2)
    AppointmentFactory()  # not selected
    otp_login(client, admin_user)

    response = client.post(
        ADMIN, {"action": "export_csv", "_selected_action": [a.pk for a in chosen]}
    )

    assert response.status_code == 200
    lines = response.content.decode().strip().splitlines()
    assert lines[0] == "id,start,end,status,channel,practitioner,patient"
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == sorted(a.pk for a in chosen)
    exported = events(Action.EXPORT)
    assert sorted(event.appointment_id for event in exported) == sorted(a.pk for a in chosen)


def test_appointments_cannot_be_changed_or_deleted_from_the_admin(client, otp_login, admin_user):
    appointment = AppointmentFactory()
    otp_login(client, admin_user)

    client.post(f"{ADMIN}{appointment.pk}/change/", {"status": "cancelled"})
    client.post(f"{ADMIN}{appointment.pk}/delete/", {"post": "yes"})

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert client.get(f"{ADMIN}add/").status_code == 403


@pytest.mark.parametrize("role", [Role.PRACTITIONER, Role.SECRETARY, Role.PATIENT])
def test_only_platform_staff_reach_the_admin(db, client, otp_login, role):
    AppointmentFactory()
    otp_login(client, UserFactory(role=role))

    response = client.get(ADMIN)

    assert response.status_code in {302, 403, 404}
    assert not AccessEvent.objects.filter(action=Action.LIST).exists()
