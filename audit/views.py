"""The audit review pages (/audit/), for OTP-verified admins. Every page records what it showed
(audit.selectors.record_review) before rendering it: if the record fails, the page does."""

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from audit import charts
from audit.access import admin_audit_view, review_actor
from audit.alerts import acknowledge_alert, refresh_alerts
from audit.forms import EventFilterForm
from audit.models import Action, Alert, Channel
from audit.registry import audited
from audit.selectors import (
    EXPORT_CAP,
    EXPORT_COLUMNS,
    TOP_ACTORS_WINDOW,
    event_page,
    export_rows,
    find_event,
    hourly_counts,
    record_review,
    same_request,
    seal_of,
    top_actors,
)

OPEN_ALERTS_SHOWN = 100
ACKNOWLEDGED_ALERTS_SHOWN = 20
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _query(query: QueryDict, **changes: Any) -> str:
    data = query.copy()
    for key, value in changes.items():
        data[key] = value
    return data.urlencode()


def _chart(now: datetime) -> dict[str, Any]:
    counts = hourly_counts(now=now)
    series = [
        charts.Series(key=channel, label=str(label), values=counts.by_channel[channel])
        for channel, label in Channel.choices
        if channel in counts.by_channel
    ]
    return {
        "chart": charts.hourly_chart(hours=counts.hours, series=series),
        "chart_series": series,
        "chart_days": charts.daily_totals(counts.hours, series),
    }


@audited
@require_GET
@admin_audit_view
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    refresh_alerts(now=now)
    context = {
        **_chart(now),
        "top_actors": top_actors(now=now),
        "open_alerts": list(Alert.objects.filter(status=Alert.Status.OPEN)[:5]),
        "since": now - TOP_ACTORS_WINDOW,
    }
    record_review(actor=review_actor(request), page="overview")
    return render(request, "audit/overview.html", context)


@audited
@require_GET
@admin_audit_view
def events(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    form = EventFilterForm.from_query(request.GET, now=now)
    if not form.is_valid():
        record_review(actor=review_actor(request), page="events page (invalid filter)")
        return render(request, "audit/events.html", {"form": form, "events": []}, status=400)
    page = event_page(event_filter=form.event_filter(now=now), cursor=form.cleaned_data["cursor"])
    record_review(actor=review_actor(request), page="events page", events=page.events)
    filters = cast(QueryDict, form.data).copy()
    filters.pop("cursor", None)
    context = {
        "form": form,
        "events": page.events,
        "next_query": _query(filters, cursor=str(page.next_cursor)) if page.next_cursor else "",
        "first_query": filters.urlencode() if form.cleaned_data["cursor"] else "",
        "export_query": filters.urlencode(),
        "export_cap": EXPORT_CAP,
    }
    return render(request, "audit/events.html", context)


@audited
@require_GET
@admin_audit_view
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = find_event(event_id=event_id)
    if event is None:
        raise Http404
    related = same_request(event)
    seal = seal_of(event)
    record_review(
        actor=review_actor(request),
        page=f"event {event.pk}",
        events=[event, *related],
        action=Action.VIEW,
    )
    return render(
        request, "audit/event_detail.html", {"event": event, "related": related, "seal": seal}
    )


class _Echo:
    """csv.writer's file: hands each line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    # A user agent or a label is the client's text: a spreadsheet must not run it as a formula.
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return f"'{value}"
    return value


def _csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


@audited
@require_GET
@admin_audit_view
def export(request: HttpRequest) -> HttpResponseBase:
    now = timezone.now()
    form = EventFilterForm.from_query(request.GET, now=now)
    if not form.is_valid():
        return redirect(f"{reverse('audit-events')}?{request.GET.urlencode()}")
    rows = export_rows(actor=review_actor(request), event_filter=form.event_filter(now=now))
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"access-events-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@audited
@require_GET
@admin_audit_view
def alerts(request: HttpRequest) -> HttpResponse:
    refresh_alerts()
    open_alerts = list(Alert.objects.filter(status=Alert.Status.OPEN)[:OPEN_ALERTS_SHOWN])
    acknowledged = list(
        Alert.objects.filter(status=Alert.Status.ACKNOWLEDGED).order_by("-acknowledged_at")[
            :ACKNOWLEDGED_ALERTS_SHOWN
        ]
    )
    record_review(actor=review_actor(request), page="alerts page")
    return render(
        request, "audit/alerts.html", {"open_alerts": open_alerts, "acknowledged": acknowledged}
    )


@audited
@require_POST
@admin_audit_view
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    user_id = cast(int, request.user.pk)
    if not acknowledge_alert(alert_id=alert_id, user_id=user_id):
        raise Http404
    record_review(
        actor=review_actor(request), page=f"alert {alert_id} acknowledged", action=Action.UPDATE
    )
    messages.success(request, _("Alert #%(id)s acknowledged.") % {"id": alert_id})
    return redirect("audit-alerts")
