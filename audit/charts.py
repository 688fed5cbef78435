"""Accesses per hour as inline SVG, drawn on the server: no script, no CDN, no chart library.

`hourly_chart` is a pure function of the counts. The markup is accessible: role="img" with a
<title> and a <desc> stating the period, the totals and the busiest hour; labelled axes; a
legend; each series drawn with its own dash pattern as well as its own colour, so colour is never
the only cue. `daily_totals` gives the same figures as a table for the page.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 92  # room for the y labels, x labels and the legend
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Y_TICKS = 4
LEGEND_STEP = 155
# Okabe-Ito colours, told apart with the common colour-vision deficiencies.
STYLES = (
    ("#0072B2", "none"),
    ("#D55E00", "8 4"),
    ("#009E73", "2 3"),
    ("#CC79A7", "10 3 2 3"),
    ("#E69F00", "4 4"),
    ("#000000", "1 3"),
)


@dataclass(frozen=True)
class Series:
    key: str  # the channel
    label: str
    values: Sequence[int]  # one per hour

    @property
    def total(self) -> int:
        return sum(self.values)


def y_scale(peak: int) -> tuple[int, int]:
    """The top of the y axis and the step between its ticks: round numbers (1, 2, 5 x 10^n)
    with about Y_TICKS steps, the top at or above the peak."""
    raw = max(peak, 1) / Y_TICKS
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * max(math.ceil(max(peak, 1) / step), 1), step


def hourly_chart(
    *, hours: Sequence[datetime], series: Sequence[Series], chart_id: str = "access-chart"
) -> SafeString:
    """A line per series, a point per hour. `hours` are the starts of consecutive hours."""
    top, step = y_scale(max((max(s.values, default=0) for s in series), default=0))
    parts = [
        _heading(chart_id, hours, series),
        _y_axis(top, step),
        _x_axis(hours),
        *(_line(index, s, top) for index, s in enumerate(series)),
        _legend(series),
    ]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {} {}" role="img" '
        'aria-labelledby="{}-title {}-desc">{}</svg>',
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def _x(index: int, count: int) -> float:
    return LEFT + (PLOT_WIDTH * index / (count - 1) if count > 1 else PLOT_WIDTH / 2)


def _y(value: int, top: int) -> float:
    return TOP + PLOT_HEIGHT * (1 - value / top)


def _when(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _heading(chart_id: str, hours: Sequence[datetime], series: Sequence[Series]) -> SafeString:
    title = _("Accesses to appointment data per hour, by channel")
    return format_html(
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>',
        chart_id,
        title,
        chart_id,
        describe(hours, series),
    )


def describe(hours: Sequence[datetime], series: Sequence[Series]) -> str:
    """The chart in words: period, total per channel, busiest hour."""
    if not hours:
        return _("No period to show.")
    period = {"start": _when(hours[0]), "end": _when(hours[-1] + timedelta(hours=1))}
    total = sum(s.total for s in series)
    if total == 0:
        return _("From %(start)s to %(end)s: no access was recorded.") % period
    summary = _("From %(start)s to %(end)s: %(total)s accesses (%(totals)s).") % {
        **period,
        "total": total,
        "totals": "; ".join(f"{s.label}: {s.total}" for s in series),
    }
    count, index, label = max(
        (value, position, s.label) for s in series for position, value in enumerate(s.values)
    )
    peak = _("Busiest hour: %(when)s, %(count)s accesses (%(channel)s).") % {
        "when": _when(hours[index]),
        "count": count,
        "channel": label,
    }
    return f"{summary} {peak}"


def _y_axis(top: int, step: int) -> SafeString:
    ticks = format_html_join(
        "",
        '<line class="grid" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/><text class="tick" x="{3}" '
        'y="{2}" text-anchor="end" dominant-baseline="middle">{4}</text>',
        (
            (LEFT, WIDTH - RIGHT, f"{_y(value, top):.1f}", LEFT - 8, value)
            for value in range(0, top + 1, step)
        ),
    )
    return format_html(
        '<g class="y-axis">{}<text class="axis-label" transform="translate(16 {}) rotate(-90)" '
        'text-anchor="middle">{}</text></g>',
        ticks,
        TOP + PLOT_HEIGHT / 2,
        _("Accesses per hour"),
    )


def _x_axis(hours: Sequence[datetime]) -> SafeString:
    bottom = TOP + PLOT_HEIGHT
    midnights = [
        (f"{_x(i, len(hours)):.1f}", timezone.localtime(hour))
        for i, hour in enumerate(hours)
        if timezone.localtime(hour).hour == 0
    ]
    ticks = format_html_join(
        "",
        '<line class="day" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>'
        '<text class="tick" x="{0}" y="{3}" text-anchor="middle">{4}</text>',
        (
            (x, TOP, bottom + 6, bottom + 20, formats.date_format(day, "D j"))
            for x, day in midnights
        ),
    )
    return format_html(
        '<g class="x-axis"><line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>{}'
        '<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text></g>',
        LEFT,
        WIDTH - RIGHT,
        bottom,
        bottom,
        ticks,
        LEFT + PLOT_WIDTH / 2,
        bottom + 42,
        _("Day (%(timezone)s)") % {"timezone": timezone.get_current_timezone_name()},
    )


def _line(index: int, series: Series, top: int) -> SafeString:
    colour, dashes = STYLES[index % len(STYLES)]
    count = len(series.values)
    points = " ".join(
        f"{_x(i, count):.1f},{_y(value, top):.1f}" for i, value in enumerate(series.values)
    )
    return format_html(
        '<g class="series" data-channel="{}"><title>{}</title><polyline fill="none" '
        'stroke="{}" stroke-width="2" stroke-dasharray="{}" points="{}"/></g>',
        series.key,
        _("%(channel)s: %(total)s accesses") % {"channel": series.label, "total": series.total},
        colour,
        dashes,
        points,
    )


def _legend(series: Sequence[Series]) -> SafeString:
    y = HEIGHT - 16
    items = format_html_join(
        "",
        '<g class="legend-item"><line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="{3}" '
        'stroke-width="3" stroke-dasharray="{4}"/>'
        '<text x="{5}" y="{2}" dominant-baseline="middle">{6}</text></g>',
        (
            (x, x + 28, y, *STYLES[i % len(STYLES)], x + 34, s.label)
            for i, s in enumerate(series)
            for x in [LEFT + i * LEGEND_STEP]
        ),
    )
    return format_html('<g class="legend">{}</g>', items)


def daily_totals(
    hours: Sequence[datetime], series: Sequence[Series]
) -> list[tuple[date, list[int]]]:
    """Per local day, the total of each series (in `series` order): the chart as a table."""
    days: dict[date, list[int]] = {}
    for index, hour in enumerate(hours):
        totals = days.setdefault(timezone.localdate(hour), [0] * len(series))
        for position, s in enumerate(series):
            totals[position] += s.values[index]
    return list(days.items())
