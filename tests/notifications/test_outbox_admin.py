"""The outbox in the Django admin: read-only, and reading its rows is audited (they name
appointments)."""

import pytest
from django.conf import settings

from accounts.models import Role
from audit.models import AccessEvent, Action, Channel
from notifications.models import Notification
from tests.factories import AppointmentFactory, UserFactory

ADMIN = f"/{settings.ADMIN_URL}notifications/notification/"


@pytest.fixture
def rows(db):
    appointments = AppointmentFactory.create_batch(2)
    return [
        Notification.objects.create(
            kind=Notification.Kind.CONFIRMATION,
            channel=Notification.Channel.EMAIL,
            recipient=Notification.Recipient.PATIENT,
            idempotency_key=f"test-{appointment.pk}",
            appointment=appointment,
        )
        for appointment in appointments
    ]


@pytest.fixture
def admin_client(db, client, otp_login):
    otp_login(client, UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True))
    return client


def test_the_outbox_list_records_the_appointments_it_shows(admin_client, rows):
    response = admin_client.get(ADMIN)

    assert response.status_code == 200
    listed = AccessEvent.objects.filter(action=Action.LIST, channel=Channel.ADMIN)
    assert sorted(listed.values_list("appointment_id", flat=True)) == sorted(
        row.appointment_id for row in rows
    )
    assert set(listed.values_list("patient_id", flat=True)) == {
        row.appointment.patient_id for row in rows
    }


def test_a_notification_page_records_a_view_and_cannot_change_it(admin_client, rows):
    response = admin_client.get(f"{ADMIN}{rows[0].pk}/change/")
    admin_client.post(f"{ADMIN}{rows[0].pk}/change/", {"status": "sent"})

    assert response.status_code == 200
    [viewed] = AccessEvent.objects.filter(action=Action.VIEW, channel=Channel.ADMIN)
    assert viewed.appointment_id == rows[0].appointment_id
    rows[0].refresh_from_db()
    assert rows[0].status == Notification.Status.PENDING
