"""Actions from the agenda: cancelling, statuses, moving, blocking time; and who may take them.
Phone booking is tested in test_agenda_phone_booking.

The `clinic` fixture freezes time at Monday 1 June 2026, 08:00 in Paris (06:00 UTC); its
practitioner is open 08:00-18:00 every day with a 30-minute reason; `clinic.slot` is Tuesday
2 June, 09:00 there.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse

from audit.models import AccessEvent, Action
from booking.models import Appointment
from notifications import sms
from notifications.models import Notification
from practitioners import agenda_urls
from practitioners.models import Absence, StaffAccess
from tests.factories import AppointmentFactory, secretary_of

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_0900 = "2026-06-02T09:00:00+02:00"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


# --- Cancelling, statuses, moving -------------------------------------------------------------


@pytest.fixture
def tomorrow(clinic, known):
    return AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=known, start=clinic.slot
    )


def test_cancelling_with_a_reason_tells_the_patient(
    staff, clinic, tomorrow, django_capture_on_commit_callbacks
):
    back = f"/agenda/?view=week&date=2026-06-01&practitioner={clinic.practitioner.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            f"/agenda/appointments/{tomorrow.pk}/cancel/",
            {"reason": "Le cabinet est fermé ce jour-là.", "next": back},
        )

    assert (response.status_code, response["Location"]) == (302, back)
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.CANCELLED
    assert tomorrow.cancelled_by == Appointment.CancelledBy.PRACTICE
    assert tomorrow.cancellation_reason == "Le cabinet est fermé ce jour-là."
    assert Notification.objects.filter(
        appointment=tomorrow,
        kind=Notification.Kind.CANCELLATION,
        recipient=Notification.Recipient.PATIENT,
    ).exists()
    (email,) = [m for m in mail.outbox if m.to == [tomorrow.patient.email]]
    assert "Le cabinet est fermé ce jour-là." in email.body
    assert "Le cabinet" not in email.subject
    (text,) = sms.outbox  # on a lock screen: the reason stays out
    assert "Le cabinet" not in text.body


def test_cancelling_without_a_reason_is_refused_with_a_message(staff, tomorrow):
    response = staff.post(f"/agenda/appointments/{tomorrow.pk}/cancel/", {"reason": ""})

    assert response["Location"] == f"/agenda/appointments/{tomorrow.pk}/"
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.BOOKED


def test_an_unsafe_next_is_ignored(staff, clinic, tomorrow):
    response = staff.post(
        f"/agenda/appointments/{tomorrow.pk}/cancel/",
        {"reason": "Empêchement", "next": "https://evil.example/agenda/"},
    )

    assert response["Location"] == (
        f"/agenda/?date=2026-06-02&practitioner={clinic.practitioner.pk}"
    )


def test_marking_arrived_then_done(staff, clinic, known):
    now = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=known, start=at(1, 8)
    )
    url = f"/agenda/appointments/{now.pk}/status/"

    staff.post(url, {"status": "arrived"})
    now.refresh_from_db()
    assert now.status == Appointment.Status.ARRIVED
    response = staff.post(url, {"status": "done"}, follow=True)
    now.refresh_from_db()
    assert now.status == Appointment.Status.DONE
    assert "The appointment of Monday 1 June, 08:00 is now: Done." in response.content.decode()
    assert AccessEvent.objects.filter(action=Action.STATUS, appointment_id=now.pk).count() == 2


def test_marking_a_no_show_once_the_appointment_has_begun(staff, clinic, known, tomorrow):
    begun = AppointmentFactory(
        practitioner=clinic.practitioner, reason=clinic.reason, patient=known, start=at(1, 7, 30)
    )

    staff.post(f"/agenda/appointments/{begun.pk}/status/", {"status": "no_show"})
    response = staff.post(
        f"/agenda/appointments/{tomorrow.pk}/status/", {"status": "no_show"}, follow=True
    )

    begun.refresh_from_db()
    tomorrow.refresh_from_db()
    assert begun.status == Appointment.Status.NO_SHOW
    assert tomorrow.status == Appointment.Status.BOOKED
    assert "A no-show can only be marked once the appointment has begun." in (
        response.content.decode()
    )


@pytest.mark.parametrize("status", ["cancelled", "", "nonsense"])
def test_a_status_outside_the_workflow_changes_nothing(staff, tomorrow, status):
    response = staff.post(f"/agenda/appointments/{tomorrow.pk}/status/", {"status": status})

    assert response.status_code == 302
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.BOOKED


def test_moving_to_another_free_time(staff, clinic, tomorrow):
    page = staff.get(f"/agenda/appointments/{tomorrow.pk}/move/?date=2026-06-03")
    assert 'value="2026-06-03T14:00:00+02:00"' in page.content.decode()

    response = staff.post(
        f"/agenda/appointments/{tomorrow.pk}/move/", {"start": "2026-06-03T14:00:00+02:00"}
    )

    assert response["Location"] == f"/agenda/?date=2026-06-03&practitioner={clinic.practitioner.pk}"
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.CANCELLED
    moved = Appointment.objects.get(rescheduled_from=tomorrow)
    assert moved.start == at(3, 14)
    assert Notification.objects.filter(
        appointment=moved, kind=Notification.Kind.RESCHEDULE
    ).exists()


def test_moving_to_a_time_taken_meanwhile_answers_409(staff, clinic, tomorrow):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=at(3, 14))

    response = staff.post(
        f"/agenda/appointments/{tomorrow.pk}/move/", {"start": "2026-06-03T14:00:00+02:00"}
    )

    assert response.status_code == 409
    assert "nothing was moved" in response.content.decode()
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.BOOKED


# --- Blocking time ----------------------------------------------------------------------------


def block(client, clinic, **fields):
    data = {
        "practitioner": clinic.practitioner.pk,
        "day": "2026-06-03",
        "start_time": "12:00",
        "end_day": "",
        "end_time": "14:00",
        "label": "Formation",
    }
    return client.post("/agenda/block/", {**data, **fields})


def test_blocking_a_time_range(staff, clinic):
    response = block(staff, clinic)

    assert response.status_code == 302
    absence = Absence.objects.get()
    assert (absence.start, absence.end, absence.label) == (at(3, 12), at(3, 14), "Formation")
    agenda = staff.get(response["Location"]).content.decode()
    assert "Unavailable: Formation" in agenda
    booking = staff.get(
        f"/agenda/book/?practitioner={clinic.practitioner.pk}&date=2026-06-03"
        f"&reason={clinic.reason.pk}&new=1"
    ).content.decode()
    assert 'value="2026-06-03T12:30:00+02:00"' not in booking
    assert 'value="2026-06-03T14:00:00+02:00"' in booking


def test_blocking_over_booked_appointments_is_refused(staff, clinic):
    AppointmentFactory(practitioner=clinic.practitioner, reason=clinic.reason, start=at(3, 13))

    response = block(staff, clinic)

    assert response.status_code == 400
    assert "1 appointment(s) are booked in this range" in response.content.decode()
    assert not Absence.objects.exists()


def test_blocking_a_range_ending_before_it_starts_is_a_form_error(staff, clinic):
    response = block(staff, clinic, end_time="11:00")

    assert response.status_code == 400
    assert "The end must come after the start." in response.content.decode()
    assert not Absence.objects.exists()


def test_blocking_over_several_days(staff, clinic):
    block(staff, clinic, end_day="2026-06-05", end_time="18:00")

    absence = Absence.objects.get()
    assert (absence.start, absence.end) == (at(3, 12), at(5, 18))


# --- Who may act ------------------------------------------------------------------------------

# Every URL of the agenda, by what a POST to it does: a new URL must be added to one of them.
ACTION_URLS = {
    "agenda-book",
    "agenda-patient-search",
    "agenda-block",
    "agenda-appointment-cancel",
    "agenda-appointment-status",
    "agenda-appointment-move",
}
READ_ONLY_URLS = {"agenda", "agenda-appointment"}
POST_ONLY_URLS = {"agenda-patient-search", "agenda-appointment-cancel", "agenda-appointment-status"}


def agenda_url(name: str, appointment: Appointment) -> str:
    pattern = next(p for p in agenda_urls.urlpatterns if p.name == name)
    if "appointment_id" in pattern.pattern.converters:
        return reverse(name, kwargs={"appointment_id": appointment.pk})
    return reverse(name)


ACTION_BODY = {
    "practitioner": "",
    "date": "2026-06-02",
    "reason": "",
    "patient": "",
    "start": TUESDAY_0900,
    "q": "lefevre",
    "status": "arrived",
    "day": "2026-06-03",
    "start_time": "12:00",
    "end_time": "13:00",
}


def test_every_agenda_url_is_classified():
    assert {p.name for p in agenda_urls.urlpatterns} == ACTION_URLS | READ_ONLY_URLS


@pytest.fixture
def viewer(client, clinic, otp_login):
    otp_login(client, secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW))
    return client


def test_a_view_only_secretary_sees_the_agenda_without_any_action(viewer, clinic, tomorrow):
    agenda = viewer.get("/agenda/?date=2026-06-02").content.decode()
    detail = viewer.get(f"/agenda/appointments/{tomorrow.pk}/").content.decode()

    assert "Éloïse Lefèvre" in agenda
    for html in (agenda, detail):
        assert 'action="/agenda/' not in html
        assert 'name="status"' not in html
        assert "Book by phone" not in html
        assert "Block time" not in html
        assert "/move/" not in html
    assert "Cancel" not in detail


@pytest.mark.parametrize("name", sorted(ACTION_URLS))
def test_a_view_only_secretary_gets_403_on_every_action(viewer, clinic, known, tomorrow, name):
    body = {
        **ACTION_BODY,
        "practitioner": clinic.practitioner.pk,
        "reason": clinic.reason.pk,
        "patient": known.pk,
        "reason_text": "",
    }
    url = agenda_url(name, tomorrow)

    response = viewer.post(url, {**body, "reason": "Empêchement"} if "cancel" in name else body)

    assert response.status_code == 403
    assert "You may view this agenda but not change it." in response.content.decode()
    tomorrow.refresh_from_db()
    assert tomorrow.status == Appointment.Status.BOOKED
    assert Appointment.objects.count() == 3
    assert not Absence.objects.exists()
    assert AccessEvent.objects.filter(action=Action.DENIED).exists()


@pytest.mark.parametrize("name", ["agenda-book", "agenda-block", "agenda-appointment-move"])
def test_a_view_only_secretary_gets_403_on_action_pages(viewer, clinic, tomorrow, name):
    url = agenda_url(name, tomorrow)

    assert viewer.get(f"{url}?practitioner={clinic.practitioner.pk}").status_code == 403


@pytest.mark.parametrize("name", sorted(READ_ONLY_URLS))
def test_read_only_pages_refuse_posts(staff, tomorrow, name):
    assert staff.post(agenda_url(name, tomorrow)).status_code == 405


@pytest.mark.parametrize("name", sorted(ACTION_URLS | READ_ONLY_URLS))
def test_another_practitioners_agenda_and_appointments_are_404_everywhere(
    staff, clinic, colleague, name
):
    theirs = AppointmentFactory(practitioner=colleague, start=at(2, 10))
    url = agenda_url(name, theirs)
    body = {**ACTION_BODY, "practitioner": colleague.pk, "reason": "Empêchement"}
    query = f"?practitioner={colleague.pk}"

    responses = [] if name in POST_ONLY_URLS else [staff.get(url + query)]
    if name not in READ_ONLY_URLS:
        responses.append(staff.post(url, body))

    assert [response.status_code for response in responses] == [404] * len(responses)
    theirs.refresh_from_db()
    assert theirs.status == Appointment.Status.BOOKED
    assert not Absence.objects.exists()
