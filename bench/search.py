"""Search at national scale: the next-free-slots table against computing availability per request.

On a database seeded with `seed_demo --practitioners 2000 --patients 50000 --days 60`, takes the
(specialty, city) pair with the most practitioners and requests, through the Django test client
with DEBUG off, the search page (`/search/?specialty=&city=`) and
`GET /api/v1/practitioners/?specialty=&city=`: server time p50/p95 and query count. In the same
run, the naive way on the same data and the same template/serializer: every matching
practitioner's availability computed by the engine on each request (to sort by it), and, for
reference, the old page (sorted by name, `next_available` for the ten shown only, which cannot
sort by availability). Query counts are also taken on a one-result search (a name).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/search.py [--json]
        [--database creneau_bench_seed]   # an already seeded database, left in place

Without --database it creates, migrates, seeds (about 2 minutes) and drops
`creneau_bench_search`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, so bench/ is on sys.path.
from booking_race import bench_environment, database_url, migrate, recreate_database, setup_django

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "creneau_bench_search"
SEED_ARGS = ["--practitioners", "2000", "--patients", "50000", "--days", "60"]
GOAL_P95_MS = 50
GOAL_SPEEDUP = 20
PAGE_SIZE = 10
STATIC_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"


def seed(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DATABASE_POOL": "0", "DEBUG": "1"}
    subprocess.run(
        [sys.executable, "manage.py", "seed_demo", *SEED_ARGS, "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


# --- The naive ways, as views on the same template and serializer --------------------------------


def _all_slots(practitioners: list[Any]) -> dict[int, list[Any]]:
    """Every practitioner's next three slots, computed by the engine over the horizon."""
    from django.utils import timezone

    from booking.next_slots import FreeSlot
    from booking.slots import booking_window, compute_slots, load_schedules

    now = timezone.now()
    result: dict[int, list[Any]] = {p.pk: [] for p in practitioners}
    online = [p for p in practitioners if p.online_booking_enabled]
    if not online:
        return result
    today = now.astimezone(online[0].practice.tz).date()
    last_day = today + timedelta(days=max(p.booking_horizon_days for p in online))
    schedules = load_schedules(online, today, last_day)
    for practitioner in online:
        window = booking_window(practitioner, now=now)
        starts = sorted(
            (start, reason.pk)
            for reason in practitioner.online_reasons
            for start in compute_slots(
                practitioner=practitioner,
                reason=reason,
                schedule=schedules[practitioner.pk],
                first_day=today,
                last_day=last_day,
                window=window,
            )[:3]
        )
        result[practitioner.pk] = [FreeSlot(start=s, reason_id=r) for s, r in starts[:3]]
    return result


def _naive_page(request: Any) -> tuple[list[Any], dict[int, list[Any]]]:
    from practitioners.selectors import search_practitioners

    practitioners = list(
        search_practitioners(specialty=request.GET["specialty"], city=request.GET["city"])
    )
    slots = _all_slots(practitioners)
    never = datetime.max.replace(tzinfo=UTC)
    practitioners.sort(
        key=lambda p: (
            slots[p.pk][0].start if slots[p.pk] else never,
            p.last_name,
            p.first_name,
            p.pk,
        )
    )
    return practitioners[:PAGE_SIZE], slots


def naive_search(request: Any) -> Any:
    from urllib.parse import urlencode

    from django.core.paginator import Paginator
    from django.shortcuts import render
    from django.urls import reverse

    from booking.forms import SearchForm
    from booking.next_slots import iso_utc

    form = SearchForm(request.GET)
    form.is_valid()
    page_items, slots = _naive_page(request)
    page = Paginator(page_items, PAGE_SIZE).get_page(1)
    for practitioner in page:
        book_url = reverse("book", kwargs={"slug": practitioner.slug})
        practitioner.next_slots_shown = [
            {
                "start": slot.start,
                "url": f"{book_url}?{urlencode({'reason': slot.reason_id, 'start': iso_utc(slot.start)})}",  # noqa: E501
            }
            for slot in slots[practitioner.pk]
        ]
    return render(request, "booking/search.html", {"form": form, "page": page})


def naive_api(request: Any) -> Any:
    from django.http import JsonResponse

    from booking.api import PractitionerListOutput

    page, slots = _naive_page(request)
    for practitioner in page:
        practitioner.free_slots = slots[practitioner.pk]
        practitioner.next_available = (
            slots[practitioner.pk][0].start if slots[practitioner.pk] else None
        )
    return JsonResponse({"results": PractitionerListOutput(page, many=True).data})


def old_search(request: Any) -> Any:
    """The search page before the table: sorted by name, next_available for the page only."""
    from django.core.paginator import Paginator
    from django.shortcuts import render

    from booking.forms import SearchForm
    from booking.slots import next_available
    from practitioners.selectors import search_practitioners

    form = SearchForm(request.GET)
    form.is_valid()
    practitioners = search_practitioners(
        specialty=request.GET["specialty"], city=request.GET["city"]
    ).order_by("last_name", "first_name", "id")
    page = Paginator(practitioners, PAGE_SIZE).get_page(1)
    earliest = next_available([p for p in page if p.online_booking_enabled])
    for practitioner in page:
        first = earliest.get(practitioner.pk)
        practitioner.next_slots_shown = [{"start": first, "url": "#"}] if first else []
    return render(request, "booking/search.html", {"form": form, "page": page})


urlpatterns: list[Any] = []


def install_urls() -> None:
    from django.urls import include, path

    urlpatterns.extend(
        [
            path("naive/search/", naive_search),
            path("naive/api/", naive_api),
            path("old/search/", old_search),
            path("", include("config.urls")),
        ]
    )


# --- Measuring ---------------------------------------------------------------------------------


def target() -> dict[str, Any]:
    from django.db.models import Count

    from practitioners.models import Practitioner

    top = (
        Practitioner.objects.values("specialty__slug", "practice__city")
        .annotate(n=Count("id"))
        .order_by("-n", "specialty__slug")
        .first()
    )
    assert top is not None, "the database is empty: seed it first"
    one = Practitioner.objects.order_by("pk").values_list("last_name", "first_name").first()
    return {
        "specialty": top["specialty__slug"],
        "city": top["practice__city"],
        "matches": top["n"],
        "one_name": f"{one[0]} {one[1]}" if one else "",
    }


def measure(get: Callable[[], Any], *, runs: int, warmup: int = 2) -> dict[str, Any]:
    from django.db import connection

    for _ in range(warmup):
        get()
    queries: list[str] = []

    def count(execute: Any, sql: str, *args: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args)

    # Not CaptureQueriesContext: the request's end closes the connection and its debug cursor.
    with connection.execute_wrapper(count):
        get()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
        "queries": len(queries),
    }


def run(url: str, *, runs: int, naive_runs: int) -> dict[str, Any]:
    setup_django(bench_environment(url))
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()  # the test client's host
    from django.db import connection

    with connection.cursor() as cursor:
        # A database just bulk-loaded has no planner statistics until autovacuum's next pass;
        # a running one has them. Without, the sort by first slot may scan every row per result.
        cursor.execute("ANALYZE")
    install_urls()
    facts = target()
    client = Client()
    filters = {"specialty": facts["specialty"], "city": facts["city"]}
    one = {"q": facts["one_name"]}

    def get(path: str, params: dict[str, str]) -> Callable[[], Any]:
        return lambda: client.get(path, params, secure=True)

    # No collectstatic here: plain static storage instead of the manifest one.
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": STATIC_STORAGE}}
    with override_settings(ROOT_URLCONF=__name__, DEBUG=False, STORAGES=storages):
        page = measure(get("/search/", filters), runs=runs)
        api = measure(get("/api/v1/practitioners/", filters), runs=runs)
        page_one = measure(get("/search/", one), runs=3)
        api_one = measure(get("/api/v1/practitioners/", one), runs=3)
        naive_page = measure(get("/naive/search/", filters), runs=naive_runs, warmup=1)
        naive_api_ = measure(get("/naive/api/", filters), runs=naive_runs, warmup=1)
        old_page = measure(get("/old/search/", filters), runs=runs)
    speedup_page = round(naive_page["p50_ms"] / page["p50_ms"], 1)
    speedup_api = round(naive_api_["p50_ms"] / api["p50_ms"], 1)
    constant = page["queries"] == page_one["queries"] and api["queries"] == api_one["queries"]
    return {
        "bench": "search",
        **facts,
        "debug": settings.DEBUG,
        "page": page,
        "api": api,
        "page_one_result": page_one,
        "api_one_result": api_one,
        "naive_page": naive_page,
        "naive_api": naive_api_,
        "old_page": old_page,
        "speedup_page": speedup_page,
        "speedup_api": speedup_api,
        "queries_constant": constant,
        "goal": f"p95 < {GOAL_P95_MS} ms, >= {GOAL_SPEEDUP}x naive, queries independent of results",
        "goal_met": page["p95_ms"] < GOAL_P95_MS
        and api["p95_ms"] < GOAL_P95_MS
        and min(speedup_page, speedup_api) >= GOAL_SPEEDUP
        and constant,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['specialty']} in {result['city']}: {result['matches']} practitioners",
        f"{'variant':28} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}",
    ]
    for key in ("page", "api", "naive_page", "naive_api", "old_page", "page_one_result"):
        o = result[key]
        lines.append(f"{key:28} {o['runs']:>5} {o['p50_ms']:>8} {o['p95_ms']:>8} {o['queries']:>8}")
    lines.append(
        f"speedup page x{result['speedup_page']}, api x{result['speedup_api']}; "
        f"goal met: {result['goal_met']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--database", help="an already seeded database on the same server")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--naive-runs", type=int, default=10)
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    if args.database:
        url = database_url(base_url, args.database)
        migrate(url)  # a seed database made before the table existed gets it
        result = run(url, runs=args.runs, naive_runs=args.naive_runs)
    else:
        url = database_url(base_url, DATABASE)
        recreate_database(base_url, DATABASE)
        try:
            migrate(url)
            seed(url)
            result = run(url, runs=args.runs, naive_runs=args.naive_runs)
        finally:
            recreate_database(base_url, DATABASE, drop_only=True)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
