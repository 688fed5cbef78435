"""Run every benchmark, write bench/RESULTS.md and print it (`make bench`).

Each benchmark runs as a subprocess with `--json` and prints one JSON object as its last line; each
compares itself with a baseline measured in the same run. With `--with-seed` (the default), also
times `seed_demo --practitioners 2000 --patients 50000 --days 60` on a scratch database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/creneau python bench/run.py [--no-with-seed]
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

# Run as a script, so bench/ is on sys.path.
from booking_race import conninfo, database_url, migrate, recreate_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SEED_ARGS = ["--practitioners", "2000", "--patients", "50000", "--days", "60"]
SEED_DATABASE = "creneau_bench_seed"


def run_json(script: str, *, timeout: int, args: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object a benchmark prints last, or {"error": ...} when it failed."""
    if not (ROOT / script).exists():
        return {"error": f"{script} not found"}
    try:
        done = subprocess.run(
            [sys.executable, script, "--json", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{script} took longer than {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{script} exited with {done.returncode}: {tail}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"{script} did not end with a JSON line"}


def time_seed(base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wall time of the large seed_demo on a fresh, migrated scratch database; then the search
    benchmark on that database, which saves it seeding its own."""
    url = database_url(base_url, SEED_DATABASE)
    recreate_database(base_url, SEED_DATABASE)
    try:
        migrate(url)
        env = {**os.environ, "DATABASE_URL": url, "DATABASE_POOL": "0", "DEBUG": "1"}
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "manage.py", "seed_demo", *SEED_ARGS],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        search = (
            run_json("bench/search.py", timeout=900, args=("--database", SEED_DATABASE))
            if done.returncode == 0
            else {"error": "seed_demo failed"}
        )
    finally:
        recreate_database(base_url, SEED_DATABASE, drop_only=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}, search
    summary = re.search(r"created (.*) in [\d.]+ s\.", done.stdout)
    return {"seconds": round(seconds, 1), "created": summary.group(1) if summary else ""}, search


def machine(base_url: str) -> dict[str, str]:
    try:
        with psycopg.connect(conninfo(database_url(base_url, "postgres"))) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error as exc:
        postgres = f"unavailable ({type(exc).__name__})"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "load": " ".join(f"{load:.1f}" for load in os.getloadavg()),
        "python": platform.python_version(),
        "postgres": postgres,
        "system": f"{platform.system()} {platform.machine()}",
    }


def yes_no(value: object) -> str:
    return "**yes**" if value else "**no**"


def race_section(result: dict[str, Any]) -> list[str]:
    lines = ["## Booking race (`bench/booking_race.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    cut = (
        ""
        if result["complete"]
        else f" A variant hit the {result['time_limit_s']:.0f} s limit before every attempt."
    )
    lines += [
        f"{result['clients']} client processes each try to book the same {result['slots']} "
        "slots, each in its own random order, one fresh patient per attempt; `filled in` is the "
        "time until the last successful booking. A deadlock between two overlapping inserts "
        "fails one of them after PostgreSQL's `deadlock_timeout`: a conflict, counted apart; "
        f"the service maps it to 409 the same way, so its deadlocks are not told apart.{cut}",
        "",
        "| variant | bookings/s | attempts/s | bookings | conflicts (of which deadlocks) | errors "
        "| double bookings "
        "| filled in (s) | total (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "service": "`book_appointment` (service)",
        "raw": "raw psycopg INSERT + exclusion constraint (baseline)",
    }
    for variant, name in names.items():
        o = result[variant]
        fill = "-" if o["fill_seconds"] is None else f"{o['fill_seconds']:.2f}"
        lines.append(
            f"| {name} | {o['bookings_per_s']:.1f} | {o['attempts_per_s']:.1f} | {o['bookings']} "
            f"| {o['conflicts']} ({o['deadlocks']}) | {o['errors']} | {o['double_bookings']} "
            f"| {fill} | {o['seconds']:.2f} |"
        )
    return [
        *lines,
        "",
        f"Service / raw throughput: **{result['ratio']:.0%}**. Goal ({result['goal']}) met: "
        f"{yes_no(result['goal_met'])}.",
        "",
    ]


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def availability_section(result: dict[str, Any]) -> list[str]:
    """bench/availability.py's figures: engine against the brute-force reference."""
    lines = ["## Availability engine (`bench/availability.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    variants = {"engine": "`free_slots` (engine)", "reference": "brute-force reference (baseline)"}
    lines += [
        f"{_cell(result.get('days'))} days of one dense agenda "
        f"({_cell(result.get('busy_intervals'))} busy intervals, "
        f"{_cell(result.get('free_slots'))} free slots), in-process.",
        "",
        "| variant | runs | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {_cell(result.get(f'{key}_runs'))} | {_cell(result.get(f'{key}_p50_ms'))} "
            f"| {_cell(result.get(f'{key}_p95_ms'))} |"
            for key, name in variants.items()
        ),
        "",
        f"Engine x{_cell(result.get('speedup'))} faster than the reference (p50). Goal p95 < "
        f"{_cell(result.get('goal_p95_ms'))} ms met: {yes_no(result.get('goal_met'))}.",
    ]
    known = {"bench", "days", "busy_intervals", "free_slots", "speedup", "goal_p95_ms", "goal_met"}
    known |= {f"{key}_{metric}" for key in variants for metric in ("runs", "p50_ms", "p95_ms")}
    lines += [f"- {key}: {value}" for key, value in result.items() if key not in known]
    return [*lines, ""]


def reminders_section(result: dict[str, Any]) -> list[str]:
    """bench/reminders.py's figures: batched delivery against one task per row."""
    lines = ["## Reminder delivery (`bench/reminders.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    batched, naive = result["batched"], result["naive"]
    cut = (
        ""
        if batched["complete"] and naive["complete"]
        else f" A variant hit the {result['time_limit_s']:.0f} s limit: its rate is over what it "
        "sent by then, and `left` counts the rows still pending."
    )
    lines += [
        f"Due SMS reminders in PostgreSQL, delivered by one Celery worker ({result['concurrency']} "
        f"prefork processes) through Redis to a fake provider taking {result['call_ms']:.0f} ms "
        "per call. Batched: `relay_pending` hands the rows out in batches of "
        f"{batched['batch_size']} (enqueue = all relay runs); naive: one `deliver_notifications` "
        "task per row. Drain = from the first hand-out to the last row sent; duplicates = keys "
        f"the provider got twice; losses = rows not sent or sent without reaching it.{cut}",
        "",
        "| variant | rows | enqueue (s) | drain (s) | messages/s | duplicates | losses | left |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "batched": "relay in batches (production path)",
        "naive": "one task per row (baseline)",
    }
    for variant, name in names.items():
        o = result[variant]
        lines.append(
            f"| {name} | {o['rows']} | {o['enqueue_s']:.2f} | {o['drain_s']:.1f} "
            f"| {o['messages_per_s']:.1f} | {o['duplicates']} | {o['losses']} | {o['remaining']} |"
        )
    return [
        *lines,
        "",
        f"Batched / naive throughput: **x{result['ratio']}**. Goal ({result['goal']}) met: "
        f"{yes_no(result['goal_met'])}.",
        "",
    ]


def search_section(result: dict[str, Any]) -> list[str]:
    """bench/search.py's figures: the next-free-slots table against computing per request."""
    lines = ["## Search (`bench/search.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    lines += [
        f"`seed_demo {' '.join(SEED_ARGS)}`; `{result['specialty']}` in {result['city']} "
        f"({result['matches']} practitioners), first page, through the Django test client with "
        "DEBUG off. Naive: every matching practitioner's next slots computed by the engine on "
        "each request, to sort by them; old page: sorted by name, the first slot of the ten "
        "shown only (cannot sort by availability).",
        "",
        "| variant | runs | p50 ms | p95 ms | queries |",
        "|---|---:|---:|---:|---:|",
    ]
    names = {
        "page": "`/search/` (next-slots table)",
        "api": "`GET /api/v1/practitioners/` (next-slots table)",
        "page_one_result": "`/search/`, one result",
        "api_one_result": "`GET /api/v1/practitioners/`, one result",
        "naive_page": "`/search/`, naive (baseline)",
        "naive_api": "`GET /api/v1/practitioners/`, naive (baseline)",
        "old_page": "old `/search/` (name order, `next_available` of the page)",
    }
    for key, name in names.items():
        o = result[key]
        lines.append(f"| {name} | {o['runs']} | {o['p50_ms']} | {o['p95_ms']} | {o['queries']} |")
    return [
        *lines,
        "",
        f"Naive / table (p50): page **x{result['speedup_page']}**, API "
        f"**x{result['speedup_api']}**; query count independent of the results: "
        f"{yes_no(result['queries_constant'])}. Goal ({result['goal']}) met: "
        f"{yes_no(result['goal_met'])}.",
        "",
    ]


def audit_section(result: dict[str, Any]) -> list[str]:
    """bench/audit_overhead.py's figures: the API with auditing on and off; write rates."""
    lines = ["## Audit overhead (`bench/audit_overhead.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    api, chain = result["api"], result["chain"]
    audited, baseline = result["record_access"], result["bulk_create_baseline"]
    lines += [
        "`GET /api/v1/appointments/?limit=50` for a patient with 50 appointments, Django test "
        "client, DEBUG off, PostgreSQL; auditing on (50 events with their HMAC, one bulk insert) "
        "and off (the selectors' `record_access` a no-op), in alternating blocks.",
        "",
        "| variant | runs | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
        f"| auditing on | {api['on']['runs']} | {api['on']['p50_ms']} | {api['on']['p95_ms']} |",
        f"| auditing off (baseline) | {api['off']['runs']} | {api['off']['p50_ms']} "
        f"| {api['off']['p95_ms']} |",
        "",
        f"On / off (p50): **{api['ratio']}**. Goal ({result['goal']}) met: "
        f"{yes_no(result['goal_met'])}.",
        "",
        f"Writes from {result['writers']} processes, {result['events_per_transaction']} events "
        "per transaction:",
        "",
        "| variant | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        f"| `record_access` | {audited['events']} | {audited['seconds']} "
        f"| {audited['events_per_s']} |",
        f"| bare `bulk_create`, no HMAC (baseline) | {baseline['events']} | {baseline['seconds']} "
        f"| {baseline['events_per_s']} |",
        "",
        f"`record_access` / bare insert: **{result['write_ratio']:.0%}**. One sealer chained "
        f"{chain['sealed']} events at {chain['seal_events_per_s']} events/s; `verify_audit_log` "
        f"walked {chain['verified']} at {chain['verify_events_per_s']} events/s "
        f"(intact: {yes_no(chain['verify_ok'])}).",
        "",
    ]
    return lines


def agenda_section(result: dict[str, Any]) -> list[str]:
    """bench/agenda.py's figures: the week view with 300 appointments against 3."""
    lines = ["## Agenda week view (`bench/agenda.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    lines += [
        "`GET /agenda/?view=week` of one practitioner (second factor passed), Django test client, "
        "DEBUG off, PostgreSQL: names decrypted, one bulk audit insert for the rows shown.",
        "",
        "| week | runs | p50 ms | p95 ms | queries |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, name in (("busy", "300 appointments"), ("quiet", "3 appointments (baseline)")):
        o = result[key]
        lines.append(f"| {name} | {o['runs']} | {o['p50_ms']} | {o['p95_ms']} | {o['queries']} |")
    return [
        *lines,
        "",
        f"Query count independent of the appointments shown: "
        f"{yes_no(result['queries_constant'])}; 300 / 3 appointments (p50): "
        f"x{result['time_ratio']}.",
        "",
    ]


def fhir_section(result: dict[str, Any]) -> list[str]:
    """bench/fhir.py's figures: FHIR searches, and the quota check on and off."""
    lines = ["## FHIR API (`bench/fhir.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    slots, day = result["slot_search_14_days"], result["appointment_search_one_day"]
    lines += [
        "An integration's bearer token, Django test client, DEBUG off, PostgreSQL.",
        "",
        "| request | runs | p50 ms | p95 ms | queries |",
        "|---|---:|---:|---:|---:|",
        f"| `GET Slot` over 14 days | {slots['runs']} | {slots['p50_ms']} | {slots['p95_ms']} "
        f"| {slots['queries']} |",
        f"| `GET Appointment` of one day ({day['appointments']} appointments) | {day['runs']} "
        f"| {day['p50_ms']} | {day['p95_ms']} | {day['queries']} |",
        "",
        "Quota check per request (same `GET Appointment`, with the check and with it mocked out):",
        "",
        "| quota backend | p50 on ms | p50 off ms (baseline) | cost ms | on / off "
        "| queries on / off |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in result["quota_check"]:
        lines.append(
            f"| {item['backend']} | {item['on']['p50_ms']} | {item['off']['p50_ms']} "
            f"| {item['cost_p50_ms']} | {item['ratio']} | {item['on']['queries']} / "
            f"{item['off']['queries']} |"
        )
    return [
        *lines,
        "",
        f"Goal ({result['goal']}) met: {yes_no(result['goal_met'])}.",
        "",
    ]


def rotation_section(result: dict[str, Any]) -> list[str]:
    """bench/rotation.py's figures: key rotation rate, and encryption's cost on booking."""
    lines = ["## Encryption (`bench/rotation.py`)", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    booking = result["booking"]
    return [
        *lines,
        f"{result['patients']} patients (5 encrypted values and 2 blind indexes each), batches of "
        f"{result['batch_size']}, PostgreSQL.",
        "",
        "| command | seconds | rows/s |",
        "|---|---:|---:|",
        f"| `rotate_encryption_key` (new key) | {result['rotate_seconds']} "
        f"| {result['rotate_rows_per_s']} |",
        f"| `rotate_encryption_key` again (nothing to do) | {result['rerun_seconds']} "
        f"| {result['rerun_rows_per_s']} |",
        f"| `rotate_blind_index` | {result['index_seconds']} | {result['index_rows_per_s']} |",
        "",
        f"`book_appointment`: {booking['encrypted_per_s']} bookings/s with encryption, "
        f"{booking['identity_per_s']} with the field encryption replaced by identity (baseline, "
        f"same run): identity / encrypted **{booking['identity_over_encrypted']}**.",
        "",
    ]


def seed_section(result: dict[str, Any] | None) -> list[str]:
    lines = ["## seed_demo at benchmark scale", ""]
    if result is None:
        return [*lines, "Not run this time (`--no-with-seed`).", ""]
    if "error" in result:
        return [*lines, f"Failed: {result['error']}", ""]
    return [
        *lines,
        f"`manage.py seed_demo {' '.join(SEED_ARGS)}` on a fresh PostgreSQL database: "
        f"**{result['seconds']:.0f} s** (created {result['created']}).",
        "",
    ]


def render(
    facts: dict[str, str],
    race: dict,
    availability: dict,
    reminders: dict,
    seed: dict | None,
    search: dict,
    audit: dict,
    agenda: dict,
    fhir: dict,
    rotation: dict,
) -> str:
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `make bench` (`python bench/run.py`) on {facts['date']}. Machine: "
            f"{facts['cpus']} CPUs ({facts['system']}), load average {facts['load']} at the "
            f"start, Python {facts['python']}, PostgreSQL {facts['postgres']}.",
            "Each figure comes with a baseline measured in the same run.",
            "",
            *race_section(race),
            *availability_section(availability),
            *reminders_section(reminders),
            *search_section(search),
            *audit_section(audit),
            *agenda_section(agenda),
            *fhir_section(fhir),
            *rotation_section(rotation),
            *seed_section(seed),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--with-seed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time seed_demo at 2000 practitioners / 50000 patients / 60 days (~3 min)",
    )
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")
    database_url(base_url, "postgres")  # exits early unless it is PostgreSQL
    facts = machine(base_url)
    availability = run_json("bench/availability.py", timeout=600)
    race = run_json("bench/booking_race.py", timeout=900)
    reminders = run_json("bench/reminders.py", timeout=600)
    audit = run_json("bench/audit_overhead.py", timeout=900)
    agenda = run_json("bench/agenda.py", timeout=600)
    fhir = run_json("bench/fhir.py", timeout=600)
    rotation = run_json("bench/rotation.py", timeout=900)
    if args.with_seed:
        seed, search = time_seed(base_url)
    else:  # search.py then seeds a database of its own
        seed, search = None, run_json("bench/search.py", timeout=1200)
    text = render(facts, race, availability, reminders, seed, search, audit, agenda, fhir, rotation)
    RESULTS.write_text(text)
    print(text)
    results = (race, availability, reminders, seed or {}, search, audit, agenda, fhir, rotation)
    failed = [result for result in results if "error" in result]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
