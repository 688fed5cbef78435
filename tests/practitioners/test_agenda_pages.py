"""The agenda's day and week views: what they show, to whom, what they record, what they cost.

The `clinic` fixture freezes time at Monday 1 June 2026, 08:00 in Paris (06:00 UTC); its
practitioner is open 08:00-18:00 every day with a 30-minute reason.
"""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from audit.models import AccessEvent, Action
from booking.models import Appointment
from practitioners.models import StaffAccess, WeeklyHours
from tests.factories import (
    AbsenceFactory,
    AppointmentFactory,
    PatientFactory,
    PractitionerFactory,
    RelativeFactory,
    UserFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    open_every_day,
    secretary_of,
)

PARIS = ZoneInfo("Europe/Paris")
DASH = "\u2013"  # between two times


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of June 2026 in Paris."""
    return datetime(2026, 6, day, hour, minute, tzinfo=PARIS)


def book(practitioner, start: datetime, **fields) -> Appointment:
    reason = practitioner.reasons.first() or VisitReasonFactory(practitioner=practitioner)
    fields.setdefault("reason", reason)
    return AppointmentFactory(practitioner=practitioner, start=start, **fields)


def column_headings(html: str) -> list[str]:
    return re.findall(r'<h2 id="column-\d+"><time datetime="([\d-]+)">', html)


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def practitioner_client(client, clinic, otp_login):
    otp_login(client, clinic.practitioner.user)
    return client


@pytest.fixture
def colleague(clinic):
    """A second practitioner of the same practice, open like the first."""
    other = PractitionerFactory(practice=clinic.practitioner.practice)
    VisitReasonFactory(practitioner=other, label="Suivi", duration_minutes=20)
    for weekday in range(7):
        WeeklyHoursFactory(
            practitioner=other, weekday=weekday, start_time=time(9), end_time=time(12)
        )
    return other


# --- Day view ---------------------------------------------------------------------------------


def test_day_view_shows_todays_appointments_with_name_reason_status_and_channel(
    practitioner_client, clinic
):
    patient = PatientFactory(first_name="Élodie", last_name="Marchand")
    book(clinic.practitioner, at(1, 10), patient=patient, channel=Appointment.Channel.PHONE)
    child = RelativeFactory(managed_by=patient, first_name="Léo", last_name="Marchand")
    book(clinic.practitioner, at(1, 11), patient=patient, relative=child)
    book(clinic.practitioner, at(2, 10), patient=PatientFactory(last_name="Demain"))

    response = practitioner_client.get("/agenda/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Agenda, Monday 1 June 2026" in html
    assert "Élodie Marchand" in html
    assert "Léo Marchand" in html
    assert "Booked by Élodie Marchand" in html
    assert "Consultation" in html
    assert '<strong class="status">Booked</strong>' in html
    assert '<span class="channel">Phone</span>' in html
    assert "Demain" not in html
    assert column_headings(html) == ["2026-06-01"]
    assert 'href="/static/css/agenda.css"' in html


def test_day_view_defaults_to_today_in_the_practices_time_zone(client, clinic, otp_login):
    # 23:30 UTC on 1 June is already 2 June in Paris.
    with time_machine.travel(datetime(2026, 6, 1, 23, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        otp_login(client, clinic.practitioner.user)
        html = client.get("/agenda/").content.decode()

    assert column_headings(html) == ["2026-06-02"]


def test_day_view_of_an_asked_date_with_navigation(practitioner_client, clinic):
    html = practitioner_client.get("/agenda/?date=2026-06-10").content.decode()

    assert column_headings(html) == ["2026-06-10"]
    assert 'rel="prev" href="/agenda/?date=2026-06-09"' in html
    assert 'rel="next" href="/agenda/?date=2026-06-11"' in html
    assert 'href="/agenda/?date=2026-06-01">Today</a>' in html


@pytest.mark.parametrize("garbage", ["yesterday", "2026-02-30", "9999-12-31", "0001-01-01"])
def test_a_bad_or_far_date_shows_today(practitioner_client, clinic, garbage):
    response = practitioner_client.get(f"/agenda/?date={garbage}")

    assert response.status_code == 200
    assert column_headings(response.content.decode()) == ["2026-06-01"]


def test_the_current_time_line_is_drawn_on_today_only(practitioner_client, clinic):
    today = practitioner_client.get("/agenda/").content.decode()
    tomorrow = practitioner_client.get("/agenda/?date=2026-06-02").content.decode()

    assert 'class="now"' in today
    assert "Current time: 08:00" in today
    assert 'class="now"' not in tomorrow


def test_opening_hours_closed_days_and_absences_are_shown(practitioner_client, clinic):
    WeeklyHours.objects.filter(practitioner=clinic.practitioner, weekday=1).delete()  # Tuesdays
    AbsenceFactory(
        practitioner=clinic.practitioner, start=at(3, 12), end=at(3, 14), label="Réunion"
    )

    monday = practitioner_client.get("/agenda/").content.decode()
    tuesday = practitioner_client.get("/agenda/?date=2026-06-02").content.decode()
    wednesday = practitioner_client.get("/agenda/?date=2026-06-03").content.decode()

    assert f"Open 08:00{DASH}18:00" in monday
    assert '<div class="open" style="top: 0.0000%; height: 100.0000%"' in monday
    assert "Closed" in tuesday
    assert 'class="open"' not in tuesday
    assert re.search(rf"12:00{DASH}14:00</span>\s+Unavailable: Réunion", wednesday)


def test_cancelled_appointments_leave_the_agenda(practitioner_client, clinic):
    book(
        clinic.practitioner,
        at(1, 10),
        patient=PatientFactory(last_name="Annulé"),
        status=Appointment.Status.CANCELLED,
    )

    html = practitioner_client.get("/agenda/").content.decode()

    assert "Annulé" not in html
    assert "No appointment" in html


def test_no_shows_are_counted_next_to_the_patient(practitioner_client, clinic):
    patient = PatientFactory()
    for day in (1, 2):
        book(
            clinic.practitioner,
            at(day, 8) - timedelta(days=7),
            patient=patient,
            status=Appointment.Status.NO_SHOW,
        )
    book(clinic.practitioner, at(1, 10), patient=patient)
    other = PractitionerFactory()
    book(other, at(1, 10) - timedelta(days=3), patient=patient, status=Appointment.Status.NO_SHOW)

    html = practitioner_client.get("/agenda/").content.decode()

    assert '<span class="no-shows">2 no-shows</span>' in html


def test_quick_status_buttons_are_offered_for_the_day(practitioner_client, clinic):
    appointment = book(clinic.practitioner, at(1, 10))

    html = practitioner_client.get("/agenda/").content.decode()

    assert f'action="/agenda/appointments/{appointment.pk}/status/"' in html
    assert 'name="status" value="arrived"' in html
    assert 'value="no_show"' not in html  # not begun yet


# --- Week view --------------------------------------------------------------------------------


def test_week_view_shows_monday_to_sunday(practitioner_client, clinic):
    book(clinic.practitioner, at(7, 17), patient=PatientFactory(last_name="Dimanche"))
    book(clinic.practitioner, at(8, 9), patient=PatientFactory(last_name="Lundisuivant"))

    html = practitioner_client.get("/agenda/?view=week&date=2026-06-03").content.decode()

    assert column_headings(html) == [f"2026-06-{day:02d}" for day in range(1, 8)]
    assert "Agenda, 1 June to 7 June 2026" in html
    assert "Dimanche" in html
    assert "Lundisuivant" not in html
    assert 'rel="prev" href="/agenda/?view=week&amp;date=2026-05-27"' in html
    assert 'rel="next" href="/agenda/?view=week&amp;date=2026-06-10"' in html
    assert "agenda-grid agenda-week" in html


# --- Secretaries and several agendas -----------------------------------------------------------


def test_secretary_sees_two_agendas_side_by_side(client, clinic, colleague, otp_login):
    secretary = secretary_of(clinic.practitioner)
    StaffAccess.objects.create(practitioner=colleague, user=secretary, level=StaffAccess.Level.VIEW)
    book(clinic.practitioner, at(1, 10), patient=PatientFactory(last_name="Premier"))
    book(colleague, at(1, 10), patient=PatientFactory(last_name="Second"))
    otp_login(client, secretary)

    html = client.get("/agenda/").content.decode()

    assert column_headings(html) == ["2026-06-01", "2026-06-01"]
    assert clinic.practitioner.display_name in html
    assert colleague.display_name in html
    assert "Premier" in html
    assert "Second" in html
    assert "(view only)" in html


def test_secretary_week_view_of_two_agendas_has_fourteen_columns(
    client, clinic, colleague, otp_login
):
    secretary = secretary_of(clinic.practitioner)
    StaffAccess.objects.create(practitioner=colleague, user=secretary)
    otp_login(client, secretary)
    query = f"practitioner={clinic.practitioner.pk}&practitioner={colleague.pk}"

    html = client.get(f"/agenda/?view=week&date=2026-06-01&{query}").content.decode()

    assert len(column_headings(html)) == 14
    assert html.count("first-of-day") == 7


def test_secretary_chooses_one_of_their_agendas(client, clinic, colleague, otp_login):
    secretary = secretary_of(clinic.practitioner)
    StaffAccess.objects.create(practitioner=colleague, user=secretary)
    book(clinic.practitioner, at(1, 10), patient=PatientFactory(last_name="Premier"))
    book(colleague, at(1, 10), patient=PatientFactory(last_name="Second"))
    otp_login(client, secretary)

    html = client.get(f"/agenda/?practitioner={colleague.pk}").content.decode()

    assert column_headings(html) == ["2026-06-01"]
    assert "Second" in html
    assert "Premier" not in html


def test_secretary_without_any_grant_sees_an_empty_page(client, clinic, otp_login):
    otp_login(client, UserFactory(role=Role.SECRETARY))

    response = client.get("/agenda/")

    assert response.status_code == 200
    assert "No agenda has been shared with you yet" in response.content.decode()


def test_more_agendas_than_fit_show_the_first_twelve_and_say_so(client, clinic, otp_login):
    secretary = secretary_of(clinic.practitioner)
    for _ in range(12):
        StaffAccess.objects.create(practitioner=PractitionerFactory(), user=secretary)
    otp_login(client, secretary)

    html = client.get("/agenda/").content.decode()

    assert len(column_headings(html)) == 12
    assert "Only the first 12 agendas are shown" in html


def test_a_week_across_the_spring_clock_change_keeps_wall_clock_times(client, otp_login, db):
    # Sunday 29 March 2026: Paris goes from 02:00 to 03:00.
    with time_machine.travel(datetime(2026, 3, 25, 8, tzinfo=PARIS), tick=False):
        practitioner = PractitionerFactory()
        open_every_day(practitioner)
        book(practitioner, datetime(2026, 3, 29, 10, tzinfo=PARIS))
        book(practitioner, datetime(2026, 3, 28, 10, tzinfo=PARIS))
        otp_login(client, practitioner.user)

        html = client.get("/agenda/?view=week&date=2026-03-25").content.decode()

    assert column_headings(html) == [f"2026-03-{day}" for day in range(23, 30)]
    assert html.count('<time datetime="2026-03-28T10:00:00+01:00">10:00</time>') == 1
    assert html.count('<time datetime="2026-03-29T10:00:00+02:00">10:00</time>') == 1
    tops = re.findall(r'class="entry appointment[^"]*" style="top: ([\d.]+)%', html)
    assert len(tops) == 2
    assert tops[0] == tops[1]  # the same height in both columns


# --- Who may see what -------------------------------------------------------------------------


def test_another_practitioners_agenda_is_404(practitioner_client, clinic, colleague):
    response = practitioner_client.get(f"/agenda/?practitioner={colleague.pk}")

    assert response.status_code == 404
    assert AccessEvent.objects.filter(action=Action.DENIED).count() == 1


def test_an_agenda_among_others_not_granted_is_404(client, clinic, colleague, otp_login):
    secretary = secretary_of(clinic.practitioner)
    otp_login(client, secretary)

    query = f"practitioner={clinic.practitioner.pk}&practitioner={colleague.pk}"
    response = client.get(f"/agenda/?{query}")

    assert response.status_code == 404


def test_secretary_without_access_gets_404(client, clinic, otp_login):
    otp_login(client, UserFactory(role=Role.SECRETARY))

    response = client.get(f"/agenda/?practitioner={clinic.practitioner.pk}")

    assert response.status_code == 404


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30])
def test_a_malformed_practitioner_id_is_404(practitioner_client, clinic, value):
    assert practitioner_client.get(f"/agenda/?practitioner={value}").status_code == 404


def test_own_id_shows_own_agenda(practitioner_client, clinic):
    response = practitioner_client.get(f"/agenda/?practitioner={clinic.practitioner.pk}")

    assert response.status_code == 200


def test_patients_get_403_and_visitors_the_login_page(client, clinic):
    assert client.get("/agenda/").status_code == 302
    assert client.get("/agenda/")["Location"].startswith("/accounts/login/")
    client.force_login(clinic.patient.user)
    assert client.get("/agenda/").status_code == 403


def test_appointment_page_shows_details_and_records_a_view(practitioner_client, clinic):
    patient = PatientFactory(first_name="Jeanne", last_name="Roux", phone="0611223344")
    appointment = book(clinic.practitioner, at(1, 10), patient=patient)

    response = practitioner_client.get(f"/agenda/appointments/{appointment.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Jeanne Roux" in html
    assert "0611223344" in html
    assert "Cancel and tell the patient" in html
    event = AccessEvent.objects.get(action=Action.VIEW)
    assert event.appointment_id == appointment.pk


def test_another_practitioners_appointment_page_is_404(practitioner_client, colleague):
    appointment = book(colleague, at(1, 10))

    response = practitioner_client.get(f"/agenda/appointments/{appointment.pk}/")

    assert response.status_code == 404


# --- What is recorded -------------------------------------------------------------------------


def test_every_appointment_shown_is_recorded_in_one_insert(practitioner_client, clinic):
    shown = [book(clinic.practitioner, at(day, 10)) for day in (1, 3, 7)]
    book(clinic.practitioner, at(8, 10))  # next week: not shown, not recorded

    with CaptureQueriesContext(connection) as queries:
        practitioner_client.get("/agenda/?view=week&date=2026-06-01")

    inserts = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "audit')
    ]
    assert len(inserts) == 1
    events = AccessEvent.objects.filter(action=Action.LIST)
    assert sorted(events.values_list("appointment_id", flat=True)) == sorted(a.pk for a in shown)
    assert set(events.values_list("actor_user_id", "on_behalf_of_id")) == {
        (clinic.practitioner.user.pk, None)
    }


def test_a_secretarys_reads_are_recorded_on_behalf_of_each_practitioner(
    client, clinic, colleague, otp_login
):
    secretary = secretary_of(clinic.practitioner)
    StaffAccess.objects.create(practitioner=colleague, user=secretary)
    first = book(clinic.practitioner, at(1, 10))
    second = book(colleague, at(1, 10))
    otp_login(client, secretary)

    client.get("/agenda/")

    events = AccessEvent.objects.filter(action=Action.LIST)
    assert set(events.values_list("appointment_id", "on_behalf_of_id", "actor_user_id")) == {
        (first.pk, clinic.practitioner.pk, secretary.pk),
        (second.pk, colleague.pk, secretary.pk),
    }


# --- What it costs ----------------------------------------------------------------------------

WEEK_QUERY_BUDGET = 12


def fill_week(practitioner, count: int) -> None:
    """`count` ten-minute appointments over the week of 1 June, for five patients, some for a
    relative, some no-shows: everything a row can need is there."""
    reason = VisitReasonFactory(practitioner=practitioner, duration_minutes=10)
    patients = [PatientFactory() for _ in range(5)]
    relative = RelativeFactory(managed_by=patients[0])
    slots = [
        at(day, hour, minute)
        for day in range(1, 8)
        for hour in range(8, 18)
        for minute in range(0, 60, 10)
    ]
    Appointment.objects.bulk_create(
        Appointment(
            practitioner=practitioner,
            patient=patients[index % 5],
            relative=relative if index % 10 == 0 else None,
            reason=reason,
            start=start,
            end=start + timedelta(minutes=10),
            status=Appointment.Status.NO_SHOW if index % 7 == 0 else Appointment.Status.BOOKED,
            channel=Appointment.Channel.WEB,
        )
        for index, start in enumerate(slots[:count])
    )


def week_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("count", [3, 300])
def test_week_view_stays_within_its_query_budget(
    practitioner_client, clinic, django_assert_max_num_queries, count
):
    fill_week(clinic.practitioner, count)

    with django_assert_max_num_queries(WEEK_QUERY_BUDGET):
        response = practitioner_client.get("/agenda/?view=week&date=2026-06-01")

    assert AccessEvent.objects.filter(action=Action.LIST).count() == count
    assert response.content.decode().count('class="entry appointment') == count


def test_week_view_query_count_does_not_grow_with_appointments(client, otp_login, db, frozen_now):
    small, large = PractitionerFactory(), PractitionerFactory()
    fill_week(small, 3)
    fill_week(large, 300)

    otp_login(client, small.user)
    with_three = week_queries(client, "/agenda/?view=week&date=2026-06-01")
    otp_login(client, large.user)
    with_three_hundred = week_queries(client, "/agenda/?view=week&date=2026-06-01")

    assert with_three == with_three_hundred <= WEEK_QUERY_BUDGET


def test_query_count_is_the_same_for_a_day_and_a_week(practitioner_client, clinic):
    fill_week(clinic.practitioner, 100)

    day = week_queries(practitioner_client, "/agenda/?date=2026-06-01")
    week = week_queries(practitioner_client, "/agenda/?view=week&date=2026-06-01")

    assert day == week


def test_two_agendas_cost_no_more_queries_than_one(client, clinic, colleague, otp_login):
    secretary = secretary_of(clinic.practitioner)
    fill_week(clinic.practitioner, 50)
    otp_login(client, secretary)
    one = week_queries(client, "/agenda/?view=week&date=2026-06-01")
    StaffAccess.objects.create(practitioner=colleague, user=secretary)
    fill_week(colleague, 50)

    two = week_queries(client, "/agenda/?view=week&date=2026-06-01")

    assert one == two
