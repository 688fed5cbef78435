"""Benchmark of the availability engine on a dense agenda, against the brute-force reference.

    python bench/availability.py          # a table
    python bench/availability.py --json   # the same figures as one JSON object, on the last line

The agenda: Monday-Saturday 08:00-12:00 and 13:30-19:00 in Europe/Paris, a 15-minute reason, 80% of
the slots booked (seeded), a few absences, 14 days from Monday 23 March 2026 (the clocks change on
the 29th). The goal is the search page's budget for one practitioner: p95 under 15 ms in-process.
"""

import argparse
import json
import random
import statistics
import sys
import time as clock
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.availability_reference import reference_free_slots
from booking.availability import Interval, OpeningRule, free_slots

PARIS = ZoneInfo("Europe/Paris")
FIRST_DAY = date(2026, 3, 23)
DAYS = 14
DURATION = timedelta(minutes=15)
BOOKED_SHARE = 0.8
GOAL_P95_MS = 15.0
SEED = 20260323


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """Wall-clock time `day` days after FIRST_DAY, in Paris."""
    return datetime.combine(FIRST_DAY + timedelta(days=day), time(hour, minute), tzinfo=PARIS)


def agenda(*, busy: list[Interval]) -> dict[str, Any]:
    """Keyword arguments for `free_slots`, as the search page would pass them on Monday 08:00."""
    opening_hours = ((time(8), time(12)), (time(13, 30), time(19)))
    return {
        "rules": [
            OpeningRule(weekday=weekday, start=start, end=end)
            for weekday in range(6)
            for start, end in opening_hours
        ],
        "busy": busy,
        "reason_id": 1,
        "duration": DURATION,
        "tz": PARIS,
        "first_day": FIRST_DAY,
        "last_day": FIRST_DAY + timedelta(days=DAYS - 1),
        "earliest": local(0, 9),  # one hour of minimum notice
        "latest_day": FIRST_DAY + timedelta(days=DAYS - 1),
    }


def dense_busy(*, rng: random.Random) -> list[Interval]:
    """80% of the empty agenda's slots booked, plus a few absences, in no particular order."""
    empty = agenda(busy=[]) | {"earliest": local(0, 0)}
    booked = [
        Interval(start, start + DURATION)
        for start in free_slots(**empty)
        if rng.random() < BOOKED_SHARE
    ]
    absences = [
        Interval(local(2, 13, 30), local(2, 19)),  # a Wednesday afternoon off
        Interval(local(9, 0), local(10, 0)),  # a day of training
        Interval(local(11, 10), local(11, 11, 30)),  # a meeting
    ]
    busy = booked + absences
    rng.shuffle(busy)  # the engine sorts; the database gives no order either
    return busy


def timings_ms(
    compute: Callable[..., list[datetime]], arguments: dict[str, Any], runs: int
) -> list[float]:
    samples = []
    for _ in range(runs):
        started = clock.perf_counter()
        compute(**arguments)
        samples.append((clock.perf_counter() - started) * 1000)
    return samples


def run(*, runs: int, reference_runs: int) -> dict[str, Any]:
    arguments = agenda(busy=dense_busy(rng=random.Random(SEED)))
    slots = free_slots(**arguments)
    assert slots == reference_free_slots(**arguments), "engine and reference disagree"
    engine = timings_ms(free_slots, arguments, runs)
    reference = timings_ms(reference_free_slots, arguments, reference_runs)
    engine_p95 = statistics.quantiles(engine, n=20)[-1]
    return {
        "days": DAYS,
        "busy_intervals": len(arguments["busy"]),
        "free_slots": len(slots),
        "engine_runs": runs,
        "engine_p50_ms": round(statistics.median(engine), 3),
        "engine_p95_ms": round(engine_p95, 3),
        "reference_runs": reference_runs,
        "reference_p50_ms": round(statistics.median(reference), 1),
        "speedup": round(statistics.median(reference) / statistics.median(engine), 1),
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": engine_p95 < GOAL_P95_MS,
    }


def print_table(results: dict[str, Any]) -> None:
    print(
        f"Dense agenda: {results['days']} days, {results['busy_intervals']} busy intervals, "
        f"{results['free_slots']} free slots (engine and reference agree)"
    )
    print(f"{'':12}{'runs':>6}{'p50 ms':>10}{'p95 ms':>10}")
    print(
        f"{'engine':12}{results['engine_runs']:>6}{results['engine_p50_ms']:>10.3f}"
        f"{results['engine_p95_ms']:>10.3f}"
    )
    print(f"{'reference':12}{results['reference_runs']:>6}{results['reference_p50_ms']:>10.1f}")
    verdict = "met" if results["goal_met"] else "MISSED"
    print(f"speed-up x{results['speedup']}; goal p95 < {results['goal_p95_ms']} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=200, help="engine runs")
    parser.add_argument("--reference-runs", type=int, default=5, help="reference runs")
    options = parser.parse_args()
    results = run(runs=options.runs, reference_runs=options.reference_runs)
    if options.json:
        print(json.dumps(results))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
