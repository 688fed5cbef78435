"""Search by earliest availability, from the next-free-slots table (page and API)."""

from datetime import UTC, datetime, time
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from booking.models import NextSlots
from booking.next_slots import refresh_next_slots
from practitioners.models import Practitioner
from tests.factories import (
    AppointmentFactory,
    PractitionerFactory,
    SpecialtyFactory,
    VisitReasonFactory,
    WeeklyHoursFactory,
)

API = "/api/v1"


def open_on(practitioner, *weekdays: int, start: time = time(9), end: time = time(12)) -> None:
    for weekday in weekdays:
        WeeklyHoursFactory(
            practitioner=practitioner, weekday=weekday, start_time=start, end_time=end
        )


def refresh_all() -> None:
    # The hooks do this after commit, which a test's transaction never reaches.
    refresh_next_slots(practitioner_ids=Practitioner.objects.values_list("pk", flat=True))


@pytest.fixture
def ranked(db, frozen_now):
    """Monday 08:00 in Paris. Soon: today 09:00; later: Wednesday; none: no hours; offline."""
    specialty = SpecialtyFactory(slug="cardiologie")
    soon = PractitionerFactory(last_name="Zola", specialty=specialty)
    later = PractitionerFactory(last_name="Abel", specialty=specialty)
    none = PractitionerFactory(last_name="Blanc", specialty=specialty)
    offline = PractitionerFactory(
        last_name="Aaron", specialty=specialty, online_booking_enabled=False
    )
    for practitioner in (soon, later, none, offline):
        VisitReasonFactory(practitioner=practitioner)
    second = VisitReasonFactory(practitioner=soon, duration_minutes=20, label="Court")
    open_on(soon, 0)
    open_on(later, 2)
    open_on(offline, 0)
    refresh_all()
    return soon, later, none, offline, second


def test_results_are_sorted_by_earliest_availability_then_name(client, ranked):
    soon, later, none, offline, _second = ranked

    response = client.get("/search/", {"specialty": "cardiologie"})

    assert list(response.context["page"]) == [soon, later, offline, none]


def test_api_results_are_sorted_the_same_way_with_their_next_slots(api_client, ranked):
    soon, later, none, offline, second = ranked

    results = api_client.get(f"{API}/practitioners/?specialty=cardiologie").json()["results"]

    assert [r["id"] for r in results] == [soon.pk, later.pk, offline.pk, none.pk]
    first = soon.reasons.order_by("position", "id").first()
    # 09:00 for both reasons (shown once, with the first), then 09:20 (20 min), 09:30 (30 min).
    assert [(s["start"], s["reason"]) for s in results[0]["next_slots"]] == [
        ("2026-06-01T09:00:00+02:00", first.pk),
        ("2026-06-01T09:20:00+02:00", second.pk),
        ("2026-06-01T09:30:00+02:00", first.pk),
    ]
    assert results[0]["next_available"] == "2026-06-01T09:00:00+02:00"
    assert results[2]["next_slots"] == []
    assert results[2]["next_available"] is None


def test_page_links_each_of_the_next_three_slots_to_the_booking_flow(client, ranked):
    soon, *_rest = ranked

    response = client.get("/search/", {"q": soon.last_name})

    shown = response.context["page"][0].next_slots_shown
    assert len(shown) == 3
    url = urlsplit(shown[1]["url"])
    assert url.path == f"/book/{soon.slug}/"
    query = parse_qs(url.query)
    assert query["start"] == ["2026-06-01T07:20:00Z"]
    html = response.content.decode()
    assert f'href="/book/{soon.slug}/?reason=' in html
    assert '<time datetime="2026-06-01T09:20:00+02:00">' in html


def test_a_full_morning_moves_the_practitioner_down_once_refreshed(
    client, ranked, django_capture_on_commit_callbacks
):
    soon, later, *_rest = ranked
    reasons = list(soon.reasons.all())
    # Fill Monday morning: soon's next slot moves to next Monday, after later's Wednesday.
    with django_capture_on_commit_callbacks(execute=True):
        AppointmentFactory(
            practitioner=soon,
            reason=reasons[0],
            start=datetime(2026, 6, 1, 7, tzinfo=UTC),
            end=datetime(2026, 6, 1, 10, tzinfo=UTC),
        )
        refresh_next_slots(practitioner_ids=[soon.pk])

    response = client.get("/search/", {"specialty": "cardiologie"})

    assert list(response.context["page"])[:2] == [later, soon]


def test_expired_rows_are_recomputed_before_sorting(client, ranked):
    soon, later, *_rest = ranked

    # Tuesday 13:00: soon's Monday slots are past; its next is Monday next week.
    with time_machine.travel(datetime(2026, 6, 2, 11, tzinfo=UTC), tick=False):
        response = client.get("/search/", {"specialty": "cardiologie"})

        assert list(response.context["page"])[:2] == [later, soon]
        assert not NextSlots.objects.filter(valid_until__lt=datetime(2026, 6, 2, 11, tzinfo=UTC))


def _many(count: int) -> None:
    specialty = SpecialtyFactory(slug="generaliste")
    for n in range(count):
        practitioner = PractitionerFactory(specialty=specialty, last_name=f"Nom{n:02d}")
        VisitReasonFactory(practitioner=practitioner)
        VisitReasonFactory(practitioner=practitioner, label="Suivi", duration_minutes=15)
        open_on(practitioner, n % 7, (n + 3) % 7)


@pytest.mark.parametrize("count", [1, 10, 25])
def test_search_page_query_count_does_not_depend_on_the_results(
    client, db, frozen_now, django_assert_max_num_queries, count
):
    _many(count)
    refresh_all()

    # The specialties, expired rows, count, page, its reasons, its rows.
    with django_assert_max_num_queries(6):
        response = client.get("/search/", {"specialty": "generaliste"})

    assert len(response.context["page"]) == min(count, 10)


@pytest.mark.parametrize("count", [1, 10, 25])
def test_api_query_count_does_not_depend_on_the_results(
    api_client, db, frozen_now, django_assert_max_num_queries, count
):
    _many(count)
    refresh_all()

    with django_assert_max_num_queries(5):
        response = api_client.get(f"{API}/practitioners/?specialty=generaliste&limit=100")

    assert len(response.json()["results"]) == count


def test_missing_rows_are_computed_in_one_batch_whatever_the_page_size(client, db, frozen_now):
    _many(1)
    with CaptureQueriesContext(connection) as one:
        client.get("/search/", {"specialty": "generaliste"})
    specialty = Practitioner.objects.get().specialty
    for _ in range(9):
        practitioner = PractitionerFactory(specialty=specialty)
        VisitReasonFactory(practitioner=practitioner)
        open_on(practitioner, 0)
    NextSlots.objects.all().delete()

    with CaptureQueriesContext(connection) as ten:
        response = client.get("/search/", {"specialty": "generaliste"})

    assert len(response.context["page"]) == 10
    assert len(ten) == len(one)
    assert all(p.next_slots_shown for p in response.context["page"])
