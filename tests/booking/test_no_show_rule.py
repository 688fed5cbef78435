"""The practitioner's no-show limit: online booking refused after N no-shows, phone booking not.

The `clinic` practice is open every day 08:00-18:00 in Paris with a 30-minute reason; it is
Monday 1 June 2026, 08:00 there, and `clinic.slot` (Tuesday 09:00) is free.
"""

from datetime import timedelta

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from booking.models import Appointment
from booking.services import TooManyNoShows, book_appointment
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    RelativeFactory,
    make_actor,
    secretary_of,
)

API = "/api/v1"


def no_shows(clinic, count: int, *, practitioner=None, **fields) -> None:
    if practitioner is None:
        fields.update(practitioner=clinic.practitioner, reason=clinic.reason)
    else:
        fields.update(practitioner=practitioner)
    for weeks in range(1, count + 1):
        AppointmentFactory(
            patient=clinic.patient,
            start=clinic.slot - timedelta(weeks=weeks),
            status=Appointment.Status.NO_SHOW,
            **fields,
        )


def limit(clinic, value: int | None) -> None:
    clinic.practitioner.no_show_limit = value
    clinic.practitioner.save(update_fields=["no_show_limit"])


def book_online(clinic):
    return book_appointment(
        actor=make_actor(clinic.patient.user),
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        patient=clinic.patient,
    )


def test_online_booking_is_refused_after_the_limit(clinic):
    limit(clinic, 2)
    no_shows(clinic, 2)

    with translation.override("en"), pytest.raises(TooManyNoShows) as refusal:
        book_online(clinic)

    assert refusal.value.code == "too_many_no_shows"
    assert "Please call the practice" in refusal.value.message
    assert not Appointment.objects.filter(start=clinic.slot).exists()


def test_online_booking_is_allowed_below_the_limit(clinic):
    limit(clinic, 2)
    no_shows(clinic, 1)

    assert book_online(clinic).start == clinic.slot


def test_the_practice_still_books_by_phone(clinic):
    limit(clinic, 1)
    no_shows(clinic, 3)
    secretary = secretary_of(clinic.practitioner)

    appointment = book_appointment(
        actor=make_actor(secretary),
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        start=clinic.slot,
        patient=clinic.patient,
        channel=Appointment.Channel.PHONE,
    )

    assert appointment.channel == Appointment.Channel.PHONE


def test_without_a_limit_no_shows_do_not_block(clinic):
    limit(clinic, None)
    no_shows(clinic, 5)

    assert book_online(clinic).start == clinic.slot


def test_no_shows_with_another_practitioner_do_not_count(clinic):
    limit(clinic, 1)
    no_shows(clinic, 2, practitioner=PractitionerFactory())

    assert book_online(clinic).start == clinic.slot


def test_a_relatives_no_shows_count_for_who_booked_them(clinic):
    limit(clinic, 1)
    no_shows(clinic, 1, relative=RelativeFactory(managed_by=clinic.patient))

    with pytest.raises(TooManyNoShows):
        book_online(clinic)


@pytest.mark.parametrize("status", [Appointment.Status.DONE, Appointment.Status.CANCELLED])
def test_only_no_shows_count(clinic, status):
    limit(clinic, 1)
    AppointmentFactory(
        practitioner=clinic.practitioner,
        reason=clinic.reason,
        patient=clinic.patient,
        start=clinic.slot - timedelta(weeks=1),
        status=status,
    )

    assert book_online(clinic).start == clinic.slot


def test_the_booking_page_explains_the_refusal(client, clinic):
    limit(clinic, 1)
    no_shows(clinic, 1)
    client.force_login(clinic.patient.user)
    start = clinic.slot.isoformat().replace("+", "%2B")

    response = client.post(
        f"/book/{clinic.practitioner.slug}/?reason={clinic.reason.pk}&start={start}",
        {"for_whom": "me"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.redirect_chain[-1][0] == clinic.practitioner.get_absolute_url()
    assert "online booking with this practitioner is closed to you" in response.content.decode()
    assert not Appointment.objects.filter(start=clinic.slot).exists()


def test_the_api_refuses_with_its_code(clinic):
    limit(clinic, 1)
    no_shows(clinic, 1)
    client = APIClient()
    client.force_login(clinic.patient.user)

    response = client.post(
        f"{API}/appointments/",
        {
            "practitioner": clinic.practitioner.pk,
            "reason": clinic.reason.pk,
            "start": clinic.slot.isoformat(),
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_no_shows"
    assert "Please call the practice" in response.json()["detail"]
    assert not Appointment.objects.filter(start=clinic.slot).exists()
