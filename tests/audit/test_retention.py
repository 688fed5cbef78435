"""Retention: whole months go, checkpointed, and what remains still verifies."""

from datetime import UTC, date, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit import partitions
from audit.chain import seal_pending, verify_log
from audit.models import AccessEvent, Action, AuditCheckpoint, AuditSeal
from audit.retention import purge_expired_events, retention_cutoff
from audit.services import AppointmentRef, record_access
from tests.factories import UserFactory, make_actor


def write_events_at(moment: datetime, count: int) -> None:
    with time_machine.travel(moment, tick=False):
        record_access(
            actor=make_actor(UserFactory()),
            action=Action.VIEW,
            appointments=[AppointmentRef(id=n) for n in range(1, count + 1)],
        )


@pytest.mark.parametrize(
    ("today", "months", "cutoff"),
    [
        (date(2026, 11, 28), 12, date(2025, 11, 1)),
        (date(2026, 1, 5), 1, date(2025, 12, 1)),
        (date(2026, 3, 31), 0, date(2026, 3, 1)),
    ],
)
def test_retention_keeps_this_month_and_the_configured_months_before_it(today, months, cutoff):
    assert retention_cutoff(today=today, months=months) == cutoff


def test_purge_removes_old_months_and_the_rest_still_verifies(db):
    write_events_at(datetime(2026, 2, 10, tzinfo=UTC), 3)
    write_events_at(datetime(2026, 3, 10, tzinfo=UTC), 4)
    write_events_at(datetime(2026, 5, 10, tzinfo=UTC), 5)

    with time_machine.travel(datetime(2026, 5, 20, tzinfo=UTC), tick=False):
        purge = purge_expired_events(months=1)  # keep April and May
        result = verify_log()

    assert purge.months == [date(2026, 2, 1), date(2026, 3, 1)]
    assert purge.events == 7
    assert AccessEvent.objects.count() == 5
    assert set(AuditSeal.objects.values_list("month", flat=True)) == {date(2026, 5, 1)}
    assert list(AuditCheckpoint.objects.values_list("month", "event_count")) == [
        (date(2026, 2, 1), 3),
        (date(2026, 3, 1), 4),
    ]
    assert result.ok, result.problem
    assert (result.verified, result.removed_by_retention) == (5, 7)
    assert date(2026, 2, 1) not in partitions.existing_partitions(connection)  # dropped whole


def test_purge_keeps_a_month_whose_chain_is_broken(db):
    write_events_at(datetime(2026, 2, 10, tzinfo=UTC), 3)
    seal_pending()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE audit_accessevent SET detail = 'hidden'")
        cursor.execute("SET session_replication_role = DEFAULT")

    with time_machine.travel(datetime(2026, 5, 20, tzinfo=UTC), tick=False):
        purge = purge_expired_events(months=1)

    assert purge.months == []
    assert purge.kept_tampered == [date(2026, 2, 1)]
    assert AccessEvent.objects.count() == 3


def test_rows_of_a_month_without_checkpoint_cannot_be_deleted(db):
    write_events_at(datetime(2026, 2, 10, tzinfo=UTC), 1)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AccessEvent.objects.all().delete()


def test_a_forged_checkpoint_is_named(db):
    write_events_at(datetime(2026, 2, 10, tzinfo=UTC), 2)
    # Someone inserts a checkpoint to make the triggers let February go.
    AuditCheckpoint.objects.create(
        month=date(2026, 2, 1), event_count=0, last_hash="", signature="0" * 64
    )

    result = verify_log()

    assert not result.ok
    assert str(result.problem) == "audit log: the retention checkpoint of 2026-02 is forged"


def test_purge_expired_command_says_what_it_did(db):
    write_events_at(datetime(2026, 2, 10, tzinfo=UTC), 2)
    out = StringIO()

    with time_machine.travel(datetime(2027, 4, 2, tzinfo=UTC), tick=False):
        call_command("purge_expired", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "audit log: kept from 2026-04-01; removed 2 events (months: 2026-02), "
        "each month checkpointed"
    )
    assert [line.split(":")[0] for line in lines[1:]] == [
        "inactive accounts",
        "notifications",
        "sessions",
    ]
