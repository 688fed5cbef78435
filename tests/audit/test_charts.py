"""audit.charts: accesses per hour as inline SVG, and the one query that feeds it."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone, translation

from audit.actors import system_actor
from audit.charts import Series, daily_totals, describe, hourly_chart, y_scale
from audit.models import Action, Channel
from audit.selectors import hourly_counts
from audit.services import record_access
from tests.factories import UserFactory, make_actor

START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
WEEK = [START + timedelta(hours=n) for n in range(7 * 24)]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"), timezone.override("Europe/Paris"):
        yield


def series_groups(svg: str) -> dict[str, list[tuple[float, float]]]:
    groups = re.findall(r'<g class="series" data-channel="(\w+)">.*?points="([^"]*)"', svg)
    return {
        channel: [tuple(map(float, point.split(","))) for point in points.split()]
        for channel, points in groups
    }


def test_one_line_per_channel_with_one_point_per_hour():
    web = [0] * len(WEEK)
    web[10] = 40
    fhir = [3] * len(WEEK)

    svg = hourly_chart(
        hours=WEEK,
        series=[Series("web", "Web", web), Series("fhir", "FHIR API", fhir)],
    )

    lines = series_groups(svg)
    assert list(lines) == ["web", "fhir"]
    assert [len(points) for points in lines.values()] == [168, 168]
    # The peak is the highest point (smallest y); x grows with time.
    ys = [y for _, y in lines["web"]]
    assert ys.index(min(ys)) == 10
    xs = [x for x, _ in lines["fhir"]]
    assert xs == sorted(xs)
    assert len(set(xs)) == 168


def test_the_chart_is_described_for_assistive_technology():
    values = [0] * len(WEEK)
    values[30] = 12

    svg = hourly_chart(hours=WEEK, series=[Series("api", "REST API", values)], chart_id="c1")

    assert 'role="img" aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Accesses to appointment data per hour, by channel</title>' in svg
    desc = re.search(r'<desc id="c1-desc">(.*?)</desc>', svg)
    assert desc
    assert desc.group(1) == (
        "From June 1, 2026, 2 a.m. to June 8, 2026, 2 a.m.: 12 accesses (REST API: 12). "
        "Busiest hour: June 2, 2026, 8 a.m., 12 accesses (REST API)."
    )
    assert "<title>REST API: 12 accesses</title>" in svg


def test_the_chart_has_a_legend_and_labelled_axes():
    svg = hourly_chart(
        hours=WEEK,
        series=[Series("web", "Web", [1] * 168), Series("task", "Background task", [2] * 168)],
    )

    legend = re.search(r'<g class="legend">(.*?)</g></svg>', svg)
    assert legend
    assert re.findall(r"<text[^>]*>([^<]+)</text>", legend.group(1)) == ["Web", "Background task"]
    assert ">Accesses per hour</text>" in svg
    assert ">Day (Europe/Paris)</text>" in svg
    # A tick and a label at each local midnight: 2 to 8 June (1 June 00:00 UTC is 02:00 in Paris).
    assert len(re.findall(r'<line class="day"', svg)) == 7
    assert re.findall(
        r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="middle">([^<]+)<', svg
    )[:2] == ["Tue 2", "Wed 3"]
    # Colour is never the only cue: every series has its own dash pattern.
    dashes = re.findall(r'<polyline[^>]*stroke-dasharray="([^"]+)"', svg)
    assert len(set(dashes)) == 2


def test_labels_are_escaped():
    svg = hourly_chart(hours=WEEK, series=[Series("web", "<script>x</script>", [1] * 168)])

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_an_empty_week_says_so():
    svg = hourly_chart(hours=WEEK, series=[])

    assert "no access was recorded." in svg
    assert "<polyline" not in svg
    assert describe([], []) == "No period to show."


def test_a_single_hour_is_drawn_in_the_middle():
    svg = hourly_chart(hours=WEEK[:1], series=[Series("web", "Web", [4])])

    # Centred in the plot (64 + 880 / 2), at the top of an axis that ends on the peak.
    assert series_groups(svg)["web"] == [(504.0, 16.0)]


@pytest.mark.parametrize(
    ("peak", "scale"),
    [(0, (1, 1)), (3, (3, 1)), (7, (8, 2)), (40, (40, 10)), (99, (100, 50)), (1234, (1500, 500))],
)
def test_the_y_axis_ends_on_a_round_number_above_the_peak(peak, scale):
    assert y_scale(peak) == scale


def test_daily_totals_sum_each_local_day():
    web = [1] * 168
    api = [0] * 168
    api[0] = 5  # 1 June 02:00 in Paris

    days = daily_totals(WEEK, [Series("web", "Web", web), Series("api", "REST API", api)])

    assert len(days) == 8  # the UTC week straddles eight local days
    assert days[0] == (datetime(2026, 6, 1).date(), [22, 5])
    assert days[1][1] == [24, 0]
    assert sum(day[1][0] for day in days) == 168


# --- The query -----------------------------------------------------------------------------------


def test_hourly_counts_buckets_by_hour_and_channel_in_one_query(db, django_assert_num_queries):
    now = datetime(2026, 6, 8, 12, 30, tzinfo=UTC)
    user = UserFactory()
    for moment, channel, count in [
        (now - timedelta(minutes=10), Channel.WEB, 2),
        (now - timedelta(hours=5), Channel.FHIR, 3),
        (now - timedelta(days=8), Channel.WEB, 1),  # older than the week
    ]:
        with time_machine.travel(moment, tick=False):
            for _ in range(count):
                record_access(actor=make_actor(user, channel=channel), action=Action.VIEW)

    with django_assert_num_queries(1):
        counts = hourly_counts(now=now)

    assert len(counts.hours) == 168
    assert counts.hours[-1] == datetime(2026, 6, 8, 12, tzinfo=UTC)
    assert set(counts.by_channel) == {"web", "fhir"}
    assert counts.by_channel["web"][-1] == 2
    assert counts.by_channel["fhir"][-6] == 3
    assert sum(map(sum, counts.by_channel.values())) == 5


def test_the_night_the_clocks_go_back_keeps_two_hours_apart(db):
    # 25 October 2026: 02:30 in Paris happens twice, at 00:30 and 01:30 UTC.
    actor = system_actor("notifications.deliver")
    for moment in ("2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00"):
        with time_machine.travel(datetime.fromisoformat(moment), tick=False):
            record_access(actor=actor, action=Action.LIST)

    counts = hourly_counts(now=datetime(2026, 10, 25, 3, tzinfo=UTC), days=1)

    task = counts.by_channel["task"]
    assert task[-4:-2] == [1, 1]
    assert sum(task) == 2
