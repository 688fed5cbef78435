"""Storage of the audit log: monthly partitions and append-only triggers (PostgreSQL), triggers
(SQLite).

The events table grows with every read of appointment data, so on PostgreSQL it is partitioned by
month of `occurred_at` (declarative range partitioning): queries for a time range touch only their
months, and retention drops a whole month at once. Partitions are created ahead by a beat task;
a DEFAULT partition catches a row whose month has none (a clock far off), so an access never fails
for want of a partition.

Triggers refuse UPDATE and TRUNCATE on the events, seals and checkpoints, and DELETE except of
rows of a month that a signed retention checkpoint covers (what `purge_expired` removes). A
partition gets its own TRUNCATE trigger, as PostgreSQL does not pass statement triggers down.
The application's database role should not own these tables: the owner (or a superuser) can
still disable triggers, drop a partition or set session_replication_role; the hash chain is what
makes such an edit visible.
"""

import logging
from datetime import date

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

EVENTS = "audit_accessevent"
SEALS = "audit_auditseal"
CHECKPOINTS = "audit_auditcheckpoint"

_PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION audit_event_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {CHECKPOINTS} c
               WHERE c.month = date_trunc('month', OLD.occurred_at AT TIME ZONE 'UTC')::date) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: DELETE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION audit_seal_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {CHECKPOINTS} c WHERE c.month = OLD.month) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: DELETE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _pg_triggers(table: str, delete_function: str) -> str:
    return f"""
CREATE OR REPLACE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {delete_function}();
CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""


def partition_name(month: date) -> str:
    return f"{EVENTS}_p{month:%Y%m}"


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_from(first: date, count: int) -> list[date]:
    months = [first.replace(day=1)]
    while len(months) < count:
        months.append(_next_month(months[-1]))
    return months


def months_between(first: date, last: date) -> list[date]:
    months = [first.replace(day=1)]
    while months[-1] < last:
        months.append(_next_month(months[-1]))
    return months


def create_partitions(connection: BaseDatabaseWrapper, months: list[date]) -> list[str]:
    """Create the missing monthly partitions (PostgreSQL); returns the names created."""
    if connection.vendor != "postgresql":
        return []
    created = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [EVENTS],
        )
        existing = {row[0] for row in cursor.fetchall()}
        for month in months:
            name = partition_name(month)
            if name in existing:
                continue
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute(
                        f"CREATE TABLE {name} PARTITION OF {EVENTS} "
                        f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') "
                        f"TO ('{_next_month(month).isoformat()} 00:00+00')"
                    )
                    cursor.execute(
                        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
                    )
            except DatabaseError:
                # The DEFAULT partition already holds rows of this month (the clock was far
                # off, or this ran late): they stay there, still append-only and verifiable.
                logger.warning(
                    "audit partition %s not created: rows in the default partition", name
                )
                continue
            created.append(name)
    return created


def existing_partitions(connection: BaseDatabaseWrapper) -> dict[date, str]:
    """Monthly partitions of the events table by month (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [EVENTS],
        )
        names = [row[0] for row in cursor.fetchall()]
    prefix = f"{EVENTS}_p"
    return {
        date(int(name[-6:-2]), int(name[-2:]), 1): name
        for name in names
        if name.startswith(prefix) and name[len(prefix) :].isdigit()
    }


def drop_partition(connection: BaseDatabaseWrapper, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {name}")


def partition_events_table(connection: BaseDatabaseWrapper, *, first: date, count: int) -> None:
    """Turn the plain events table of migration 0002 into a partitioned one, keeping its rows,
    columns and indexes (PostgreSQL). Identity columns cannot live on a partitioned table before
    PostgreSQL 17, so the id takes its values from a plain sequence."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {EVENTS} RENAME TO {EVENTS}_unpartitioned")
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT LIKE %s",
            [f"{EVENTS}_unpartitioned", "%pkey"],
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT min(occurred_at), max(id) FROM {EVENTS}_unpartitioned")
        oldest, last_id = cursor.fetchone()
        for statement in (
            f"CREATE TABLE {EVENTS} (LIKE {EVENTS}_unpartitioned INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS) PARTITION BY RANGE (occurred_at)",
            f"CREATE SEQUENCE {EVENTS}_seq OWNED BY {EVENTS}.id",
            f"ALTER TABLE {EVENTS} ALTER COLUMN id SET DEFAULT nextval('{EVENTS}_seq')",
            # The key must hold the partitioning column; the old table's key keeps its name.
            f"ALTER TABLE {EVENTS} ADD CONSTRAINT {EVENTS}_partitioned_pkey "
            "PRIMARY KEY (id, occurred_at)",
            f"CREATE TABLE {EVENTS}_default PARTITION OF {EVENTS} DEFAULT",
        ):
            cursor.execute(statement)
    months = months_from(first, count)
    if oldest is not None and oldest.date().replace(day=1) < first:
        months = months_between(oldest.date().replace(day=1), months[-1])
    create_partitions(connection, months)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {EVENTS} SELECT * FROM {EVENTS}_unpartitioned")
        if last_id is not None:
            cursor.execute(f"SELECT setval('{EVENTS}_seq', %s)", [last_id])
        cursor.execute(f"DROP TABLE {EVENTS}_unpartitioned")
        for definition in indexes:
            cursor.execute(
                definition.replace(f" ON public.{EVENTS}_unpartitioned ", f" ON {EVENTS} ")
            )
        cursor.execute(
            f"CREATE TRIGGER {EVENTS}_default_no_truncate BEFORE TRUNCATE ON {EVENTS}_default "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )


def install_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTIONS)
            cursor.execute(_pg_triggers(EVENTS, "audit_event_delete"))
            cursor.execute(_pg_triggers(SEALS, "audit_seal_delete"))
            cursor.execute(_pg_triggers(CHECKPOINTS, "audit_refuse_change"))
        elif connection.vendor == "sqlite":
            for statement in _sqlite_triggers():
                cursor.execute(statement)


def _sqlite_triggers() -> list[str]:
    refuse = "SELECT RAISE(ABORT, 'the audit log is append-only')"
    event_month = "strftime('%Y-%m-01', OLD.occurred_at)"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN {refuse}; END"
        for table in (EVENTS, SEALS, CHECKPOINTS)
    ] + [
        f"CREATE TRIGGER IF NOT EXISTS {EVENTS}_no_delete BEFORE DELETE ON {EVENTS} "
        f"WHEN NOT EXISTS (SELECT 1 FROM {CHECKPOINTS} WHERE month = {event_month}) "
        f"BEGIN {refuse}; END",
        f"CREATE TRIGGER IF NOT EXISTS {SEALS}_no_delete BEFORE DELETE ON {SEALS} "
        f"WHEN NOT EXISTS (SELECT 1 FROM {CHECKPOINTS} WHERE month = OLD.month) "
        f"BEGIN {refuse}; END",
        f"CREATE TRIGGER IF NOT EXISTS {CHECKPOINTS}_no_delete BEFORE DELETE ON {CHECKPOINTS} "
        f"BEGIN {refuse}; END",
    ]
