"""The agenda settings pages: who sees them, who may change them (every URL enumerated), form
errors that save nothing, and changes that reach online booking."""

from datetime import UTC, datetime, time

import pytest
from django.urls import URLPattern

from booking.models import NextSlots
from practitioners.models import Absence, Practitioner, StaffAccess, VisitReason, WeeklyHours
from practitioners.settings_urls import urlpatterns
from tests.factories import (
    AbsenceFactory,
    AppointmentFactory,
    PractitionerFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
    secretary_of,
)

LIST_PAGES = ["/agenda/hours/", "/agenda/absences/", "/agenda/reasons/", "/agenda/settings/"]
OWNER_ONLY = {"booking_rules", "team", "team_access", "team_withdraw", "team_remove"}


@pytest.fixture(autouse=True)
def _in_english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def agenda(clinic):
    """The clinic, with an absence, a secretary who manages it and one who only views it."""
    clinic.absence = AbsenceFactory(
        practitioner=clinic.practitioner,
        start=datetime(2026, 6, 10, 8, tzinfo=UTC),
        end=datetime(2026, 6, 10, 12, tzinfo=UTC),
    )
    clinic.manager = secretary_of(clinic.practitioner)
    clinic.viewer = secretary_of(clinic.practitioner, level=StaffAccess.Level.VIEW)
    clinic.hours = WeeklyHours.objects.filter(practitioner=clinic.practitioner).first()
    return clinic


def url_of(pattern: URLPattern, agenda) -> str:
    ids = {
        "hours_id": agenda.hours.pk,
        "absence_id": agenda.absence.pk,
        "reason_id": agenda.reason.pk,
        "user_id": agenda.manager.pk,
    }
    route = str(pattern.pattern)
    for name in pattern.pattern.converters:
        route = route.replace(f"<int:{name}>", str(ids[name]))
    return f"/agenda/{route}"


def all_urls(agenda) -> list[tuple[str, str]]:
    return [(pattern.callback.__name__, url_of(pattern, agenda)) for pattern in urlpatterns]


def snapshot(practitioner: Practitioner) -> tuple:
    practitioner = Practitioner.objects.get(pk=practitioner.pk)
    return (
        list(WeeklyHours.objects.filter(practitioner=practitioner).values()),
        list(Absence.objects.filter(practitioner=practitioner).values()),
        list(VisitReason.objects.filter(practitioner=practitioner).values()),
        list(StaffAccess.objects.filter(practitioner=practitioner).values("user", "level")),
        practitioner.minimum_notice_minutes,
        practitioner.online_booking_enabled,
    )


# --- Who gets in --------------------------------------------------------------------------------


def test_every_settings_url_is_enumerated(agenda):
    assert len(urlpatterns) == 14
    assert {name for name, _url in all_urls(agenda)} >= OWNER_ONLY


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_log_in(agenda, client, method):
    for _name, url in all_urls(agenda):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("method", ["get", "post"])
def test_patients_are_refused(agenda, client, method):
    client.force_login(agenda.patient.user)
    for _name, url in all_urls(agenda):
        assert getattr(client, method)(url).status_code == 403, url


def test_staff_without_a_second_factor_are_sent_to_verify(agenda, client):
    client.force_login(agenda.practitioner.user)
    for _name, url in all_urls(agenda):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/"), url
        assert "login" not in response["Location"], url


# --- What each one sees -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["practitioner", "manager"])
def test_the_practitioner_and_a_managing_secretary_get_the_forms(agenda, client, otp_login, who):
    user = agenda.practitioner.user if who == "practitioner" else agenda.manager
    otp_login(client, user)
    for url in LIST_PAGES[:3]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert f'action="{url}?practitioner={agenda.practitioner.pk}"' in response.content.decode()
    edit = client.get(f"/agenda/hours/{agenda.hours.pk}/")
    assert edit.status_code == 200
    assert 'value="08:00"' in edit.content.decode()


def test_a_viewing_secretary_sees_every_page_without_a_form(agenda, client, otp_login):
    otp_login(client, agenda.viewer)
    for url in LIST_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert 'action="/agenda/' not in page, url
    hours_page = client.get("/agenda/hours/").content.decode()
    assert "08:00\N{EN DASH}18:00" in hours_page
    assert client.get(f"/agenda/hours/{agenda.hours.pk}/").status_code == 403
    assert client.get(f"/agenda/reasons/{agenda.reason.pk}/").status_code == 403


def test_a_viewing_secretary_gets_403_on_every_post_and_nothing_changes(agenda, client, otp_login):
    before = snapshot(agenda.practitioner)
    otp_login(client, agenda.viewer)
    data = {"weekdays": ["1"], "start_time": "19:00", "end_time": "20:00", "level": "manage"}
    for _name, url in all_urls(agenda):
        assert client.post(url, data).status_code == 403, url
    assert snapshot(agenda.practitioner) == before


def test_a_managing_secretary_may_not_change_booking_rules_or_the_team(agenda, client, otp_login):
    before = snapshot(agenda.practitioner)
    otp_login(client, agenda.manager)
    assert "Only the practitioner" in client.get("/agenda/settings/").content.decode()
    assert client.get("/agenda/team/").status_code == 403
    for name, url in all_urls(agenda):
        if name in OWNER_ONLY:
            response = client.post(url, {"minimum_notice_minutes": "0", "level": "view"})
            assert response.status_code == 403, url
    assert snapshot(agenda.practitioner) == before


def test_another_practitioners_agenda_is_not_found(agenda, client, otp_login):
    other = PractitionerFactory()
    otp_login(client, agenda.practitioner.user)
    for url in [*LIST_PAGES, "/agenda/team/"]:
        assert client.get(f"{url}?practitioner={other.pk}").status_code == 404, url
        assert client.get(f"{url}?practitioner=abc").status_code == 404, url
    others_hours = WeeklyHoursFactory(practitioner=other)
    assert client.get(f"/agenda/hours/{others_hours.pk}/").status_code == 404
    assert client.post(f"/agenda/hours/{others_hours.pk}/delete/").status_code == 404
    assert WeeklyHours.objects.filter(pk=others_hours.pk).exists()


def test_a_secretary_switches_between_the_agendas_given_to_them(agenda, client, otp_login):
    second = PractitionerFactory(last_name="Zola")
    StaffAccess.objects.create(practitioner=second, user=agenda.manager, level="view")
    stranger = PractitionerFactory()
    otp_login(client, agenda.manager)

    mine = client.get("/agenda/reasons/").content.decode()
    theirs = client.get(f"/agenda/reasons/?practitioner={second.pk}")

    assert 'name="practitioner"' in mine
    assert f'action="/agenda/reasons/?practitioner={agenda.practitioner.pk}"' in mine
    assert theirs.status_code == 200
    assert 'action="/agenda/' not in theirs.content.decode()  # view only on that one
    assert client.get(f"/agenda/reasons/?practitioner={stranger.pk}").status_code == 404


def test_a_secretary_without_any_agenda_is_told_so(db, client, otp_login):
    secretary = secretary_of(PractitionerFactory())
    StaffAccess.objects.filter(user=secretary).delete()
    otp_login(client, secretary)

    response = client.get("/agenda/hours/")

    assert response.status_code == 200
    assert "No agenda yet" in response.content.decode()


# --- Form errors save nothing -------------------------------------------------------------------


@pytest.fixture
def owner_client(agenda, client, otp_login):
    otp_login(client, agenda.practitioner.user)
    return client


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"weekdays": ["1"], "start_time": "20:00", "end_time": "19:00"}, "end_time", "come after"),
        ({"weekdays": [], "start_time": "19:00", "end_time": "20:00"}, "weekdays", "required"),
        ({"weekdays": ["9"], "start_time": "19:00", "end_time": "20:00"}, "weekdays", "valid"),
        ({"weekdays": ["1"], "start_time": "25:00", "end_time": "26:00"}, "start_time", "valid"),
        (
            {
                "weekdays": ["1"],
                "start_time": "19:00",
                "end_time": "20:00",
                "valid_from": "2026-07-01",
                "valid_until": "2026-06-01",
            },
            "valid_until",
            "validity must end",
        ),
    ],
)
def test_bad_hours_are_errors_on_their_field(agenda, owner_client, data, field, message):
    before = snapshot(agenda.practitioner)

    response = owner_client.post("/agenda/hours/", data)

    page = response.content.decode()
    assert response.status_code == 400
    assert f'<span class="errorlist" id="id_{field}_errors">' in page
    assert message in page.split(f'id="id_{field}_errors">')[1].split("</span>")[0]
    assert f'aria-describedby="id_{field}_errors' in page
    assert snapshot(agenda.practitioner) == before


def test_overlapping_hours_are_a_form_error(agenda, owner_client):
    before = snapshot(agenda.practitioner)

    response = owner_client.post(
        "/agenda/hours/", {"weekdays": ["1"], "start_time": "17:00", "end_time": "19:00"}
    )

    assert response.status_code == 400
    assert "These hours overlap the range Tuesday 08:00-18:00" in response.content.decode()
    assert snapshot(agenda.practitioner) == before


def test_an_overlap_on_edit_is_a_form_error(agenda, owner_client):
    extra = WeeklyHoursFactory(
        practitioner=agenda.practitioner, weekday=1, start_time=time(19), end_time=time(20)
    )
    before = snapshot(agenda.practitioner)

    response = owner_client.post(
        f"/agenda/hours/{extra.pk}/", {"weekday": "1", "start_time": "17:00", "end_time": "20:00"}
    )

    assert response.status_code == 400
    assert "overlap" in response.content.decode()
    assert snapshot(agenda.practitioner) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reminder_hours": "24, 24", "reminders_enabled": "on"}, "different time"),
        ({"reminder_hours": "48, 24, 2, 1", "reminders_enabled": "on"}, "At most 3"),
        ({"reminder_hours": "0", "reminders_enabled": "on"}, "between 1 and 168"),
        ({"reminder_hours": "2h", "reminders_enabled": "on"}, "whole numbers"),
        ({"reminder_hours": "", "reminders_enabled": "on"}, "at least one reminder"),
        ({"booking_horizon_days": "0"}, "greater than or equal to 1"),
        ({"no_show_limit": "-1"}, "greater than or equal to 1"),
    ],
)
def test_bad_booking_rules_are_form_errors(agenda, owner_client, data, message):
    valid = {
        "minimum_notice_minutes": "60",
        "booking_horizon_days": "60",
        "cancellation_notice_hours": "24",
        "reminder_hours": "24, 2",
        "online_booking_enabled": "on",
    }
    before = snapshot(agenda.practitioner)

    response = owner_client.post("/agenda/settings/", valid | data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot(agenda.practitioner) == before
    assert Practitioner.objects.get(pk=agenda.practitioner.pk).reminder_hours == [24, 2]


@pytest.mark.parametrize(("duration", "status"), [("3", 400), ("481", 400), ("abc", 400)])
def test_a_duration_out_of_range_is_a_form_error(agenda, owner_client, duration, status):
    data = {"label": "Bilan", "duration_minutes": duration, "patient_kind": "all", "position": "0"}

    response = owner_client.post("/agenda/reasons/", data)

    assert response.status_code == status
    assert not VisitReason.objects.filter(label="Bilan").exists()


def test_an_absence_over_a_booked_appointment_is_a_form_error(agenda, owner_client):
    AppointmentFactory(practitioner=agenda.practitioner, reason=agenda.reason, start=agenda.slot)

    response = owner_client.post(
        "/agenda/absences/", {"start": "2026-06-02T08:00", "end": "2026-06-02T12:00"}
    )

    assert response.status_code == 400
    assert "move or cancel them first" in response.content.decode()
    assert Absence.objects.filter(practitioner=agenda.practitioner).count() == 1


def test_a_deleted_object_answers_404(agenda, owner_client):
    assert owner_client.post("/agenda/absences/999999/delete/").status_code == 404
    assert owner_client.post("/agenda/reasons/999999/active/", {"active": "0"}).status_code == 404
    assert owner_client.get("/agenda/reasons/999999/").status_code == 404


# --- Changes reach online booking ---------------------------------------------------------------


def public_slots(client, agenda, reason=None) -> list[str]:
    response = client.get(
        f"/api/v1/practitioners/{agenda.practitioner.pk}/slots/",
        {"reason": (reason or agenda.reason).pk, "start": "2026-06-02", "days": 1},
    )
    assert response.status_code == 200
    return response.json()["slots"]


def test_hours_added_on_the_page_are_offered_online(
    agenda, owner_client, django_capture_on_commit_callbacks
):
    WeeklyHours.objects.filter(practitioner=agenda.practitioner, weekday__in=[1, 3]).delete()
    data = {"weekdays": ["1", "3"], "start_time": "14:00", "end_time": "15:00"}

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/agenda/hours/", data)

    assert response.status_code == 302
    assert response["Location"] == f"/agenda/hours/?practitioner={agenda.practitioner.pk}"
    assert public_slots(owner_client, agenda) == ["2026-06-02T12:00:00Z", "2026-06-02T12:30:00Z"]
    assert NextSlots.objects.get(reason=agenda.reason).first_slot.isoformat() == (
        "2026-06-01T07:00:00+00:00"  # Monday 09:00 Paris: Monday hours untouched
    )


def test_an_absence_is_read_in_the_practices_time_zone(agenda, owner_client):
    response = owner_client.post(
        "/agenda/absences/", {"start": "2026-06-02T08:00", "end": "2026-06-02T17:00", "label": "x"}
    )

    assert response.status_code == 302
    absence = Absence.objects.filter(practitioner=agenda.practitioner).latest("pk")
    assert absence.start == datetime(2026, 6, 2, 6, tzinfo=UTC)  # 08:00 in Paris (CEST)
    assert public_slots(owner_client, agenda) == ["2026-06-02T15:00:00Z", "2026-06-02T15:30:00Z"]


def test_a_reason_deactivated_on_the_page_leaves_the_public_page(agenda, owner_client):
    public_page = f"/practitioners/{agenda.practitioner.slug}/"
    assert agenda.reason.label in owner_client.get(public_page).content.decode()

    owner_client.post(f"/agenda/reasons/{agenda.reason.pk}/active/", {"active": "0"})

    agenda.reason.refresh_from_db()
    assert not agenda.reason.active
    reasons = owner_client.get(f"/api/v1/practitioners/{agenda.practitioner.pk}/").json()
    assert reasons["reasons"] == []


def test_a_reason_edited_on_the_page_changes_the_slot_length(agenda, owner_client):
    data = {
        "label": "Long",
        "duration_minutes": "60",
        "online_bookable": "on",
        "patient_kind": "all",
        "position": "0",
    }

    response = owner_client.post(f"/agenda/reasons/{agenda.reason.pk}/", data)

    assert response.status_code == 302
    assert public_slots(owner_client, agenda)[:2] == [
        "2026-06-02T06:00:00Z",
        "2026-06-02T07:00:00Z",
    ]


def test_booking_rules_saved_on_the_page(agenda, owner_client):
    data = {
        "minimum_notice_minutes": "0",
        "booking_horizon_days": "30",
        "cancellation_notice_hours": "48",
        "reminders_enabled": "on",
        "reminder_hours": "2; 24",
        "online_booking_enabled": "",
        "no_show_limit": "",
    }

    response = owner_client.post("/agenda/settings/", data)

    assert response.status_code == 302
    saved = Practitioner.objects.get(pk=agenda.practitioner.pk)
    assert saved.reminder_hours == [24, 2]
    assert (saved.online_booking_enabled, saved.no_show_limit) == (False, None)
    assert public_slots(owner_client, agenda) == []
    assert 'value="24, 2"' in owner_client.get("/agenda/settings/").content.decode()


# --- Query budgets ------------------------------------------------------------------------------


@pytest.fixture
def busy_agenda(agenda):
    for weekday in range(7):
        for hour in (19, 20, 21):
            WeeklyHoursFactory(
                practitioner=agenda.practitioner,
                weekday=weekday,
                start_time=time(hour),
                end_time=time(hour, 45),
            ).reasons.add(agenda.reason)
    for index in range(20):
        VisitReasonFactory(practitioner=agenda.practitioner, label=f"Reason {index}")
        AbsenceFactory(
            practitioner=agenda.practitioner,
            start=datetime(2026, 7, 1 + index, 8, tzinfo=UTC),
            end=datetime(2026, 7, 1 + index, 9, tzinfo=UTC),
        )
    AppointmentFactory(practitioner=agenda.practitioner, reason=agenda.reason, start=agenda.slot)
    return agenda


# Session, user and OTP device, plus one spare for session bookkeeping; then the page's own
# (agenda, and what it lists): none grows with the number of rows.
AUTHENTICATION_QUERIES = 4
PAGE_QUERIES = {
    "/agenda/hours/": 4,  # agenda, reasons (form), hours, their reasons
    "/agenda/absences/": 2,
    "/agenda/reasons/": 2,
    "/agenda/settings/": 1,
}


@pytest.mark.parametrize("url", LIST_PAGES)
@pytest.mark.parametrize("who", ["practitioner", "viewer"])
def test_list_pages_stay_within_their_query_budget(
    busy_agenda, client, otp_login, django_assert_max_num_queries, url, who
):
    user = busy_agenda.practitioner.user if who == "practitioner" else busy_agenda.viewer
    otp_login(client, user)
    client.get(url)  # a first request may save the session

    with django_assert_max_num_queries(AUTHENTICATION_QUERIES + PAGE_QUERIES[url]):
        response = client.get(url)

    assert response.status_code == 200
