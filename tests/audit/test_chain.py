"""Tamper evidence of the audit log: macs, the hash chain, triggers, verify_audit_log."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.chain import seal_pending, verify_log
from audit.models import AccessEvent, Action, AuditSeal, Channel
from audit.services import record_access
from tests.factories import AppointmentFactory, PatientFactory, make_actor


@contextmanager
def triggers_off():
    """What an attacker with the table owner's rights could do: write past the triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def write_events(count: int) -> list[AccessEvent]:
    patient = PatientFactory()
    appointments = [AppointmentFactory(patient=patient) for _ in range(count)]
    return record_access(
        actor=make_actor(patient.user), action=Action.LIST, appointments=appointments
    )


def verify_command() -> tuple[int, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit_log", stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), err.getvalue()
    return 0, out.getvalue()


def test_each_event_gets_a_mac_and_sealing_chains_them_in_order(db):
    events = write_events(5)

    assert all(len(event.mac) == 64 for event in events)
    assert seal_pending() == 5
    assert seal_pending() == 0  # nothing sealed twice
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [seal.seq for seal in seals] == [1, 2, 3, 4, 5]
    assert [seal.event_id for seal in seals] == [event.pk for event in events]
    assert len({seal.hash for seal in seals}) == 5


def test_an_intact_log_verifies_with_its_count(db):
    write_events(7)
    seal_pending()

    assert verify_command() == (0, "OK: 7 events verified in 1 month(s)\n")


def test_recent_unsealed_events_are_reported_pending_not_tampered(db):
    write_events(2)
    seal_pending()
    write_events(3)

    code, output = verify_command()

    assert code == 0
    assert "2 events verified" in output
    assert "3 recent event(s) not sealed yet" in output


@pytest.mark.parametrize("statement", ["UPDATE {t} SET detail = 'x'", "DELETE FROM {t}"])
@pytest.mark.parametrize("table", ["audit_accessevent", "audit_auditseal"])
def test_the_database_refuses_to_change_or_remove_events(db, statement, table):
    write_events(1)
    seal_pending()
    if table == "audit_auditseal":
        statement = statement.replace("detail", "hash")

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(t=table))

    assert AccessEvent.objects.count() == 1


@pytest.mark.parametrize("table", ["audit_accessevent", "audit_auditseal", "audit_auditcheckpoint"])
def test_the_database_refuses_to_truncate_the_log(db, table):
    write_events(1)

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {table} CASCADE")


def test_a_partition_cannot_be_truncated_either(db):
    [event] = write_events(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_accessevent WHERE id = %s", [event.pk]
        )
        [partition] = cursor.fetchone()

    assert partition == f"audit_accessevent_p{event.occurred_at:%Y%m}"
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {partition}")


def test_an_edited_event_is_named(db):
    events = write_events(5)
    seal_pending()
    with triggers_off(), connection.cursor() as cursor:
        # Pointing a read at another patient: the kind of edit that would hide who was read.
        cursor.execute(
            "UPDATE audit_accessevent SET patient_id = patient_id + 1 WHERE id = %s",
            [events[2].pk],
        )

    code, output = verify_command()

    assert code == 1
    assert (
        output
        == f"TAMPERED: event #{events[2].pk}: edited (its content no longer matches its mac)\n"
    )


def test_a_removed_event_is_named(db):
    events = write_events(5)
    seal_pending()
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_accessevent WHERE id = %s", [events[1].pk])

    code, output = verify_command()

    assert code == 1
    assert f"event #{events[1].pk}: removed" in output


def test_an_event_removed_with_its_seal_breaks_the_sequence(db):
    events = write_events(5)
    seal_pending()
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_accessevent WHERE id = %s", [events[1].pk])
        cursor.execute("DELETE FROM audit_auditseal WHERE event_id = %s", [events[1].pk])

    code, output = verify_command()

    assert code == 1
    assert f"event #{events[2].pk}: the chain of" in output
    assert "lost entry 2" in output


def test_an_inserted_event_is_named(db):
    events = write_events(3)
    seal_pending()
    forged = AccessEvent(
        **{
            name: getattr(events[0], name)
            for name in ("actor_kind", "actor_user_id", "actor_role", "action", "channel")
        }
    )
    forged.occurred_at = events[0].occurred_at
    forged.patient_id = 999
    forged.mac = "0" * 64  # without the chain key, no valid mac can be made
    forged.save()

    code, output = verify_command()

    assert code == 1
    assert f"event #{forged.pk}: forged or edited" in output


def test_an_old_event_missing_from_the_chain_is_named(db, settings):
    settings.AUDIT_SEAL_GRACE_SECONDS = 60
    sealed = write_events(2)
    seal_pending()
    with time_machine.travel(sealed[0].occurred_at - timedelta(hours=2)):
        # Written "two hours ago" but committed only now, after the last seal run's window.
        [late] = write_events(1)

    code, output = verify_command()

    assert code == 1
    assert f"event #{late.pk}: inserted outside the chain" in output


def test_reordered_events_are_named(db):
    events = write_events(4)
    seal_pending()
    first, second = AuditSeal.objects.order_by("seq")[1:3]
    with triggers_off(), connection.cursor() as cursor:
        # Swap which event holds which place in the chain (through -1: event_id is unique).
        swap = "UPDATE audit_auditseal SET event_id = %s WHERE id = %s"
        cursor.execute(swap, [-1, first.pk])
        cursor.execute(swap, [first.event_id, second.pk])
        cursor.execute(swap, [second.event_id, first.pk])

    code, output = verify_command()

    assert code == 1
    assert f"event #{events[2].pk}: out of order" in output


def test_each_month_has_its_own_chain(db):
    with time_machine.travel(datetime(2026, 9, 30, 23, 59, tzinfo=UTC), tick=False):
        write_events(2)
    with time_machine.travel(datetime(2026, 10, 1, 0, 1, tzinfo=UTC), tick=False):
        write_events(3)
        seal_pending()
        result = verify_log()

    assert result.ok, result.problem
    assert result.verified == 5
    assert [f"{month:%Y-%m}" for month in result.months] == ["2026-09", "2026-10"]
    assert list(AuditSeal.objects.order_by("month", "seq").values_list("month__month", "seq")) == [
        (9, 1),
        (9, 2),
        (10, 1),
        (10, 2),
        (10, 3),
    ]


def test_verify_one_month(db):
    with time_machine.travel(datetime(2026, 9, 15, tzinfo=UTC), tick=False):
        write_events(2)
    with time_machine.travel(datetime(2026, 10, 15, tzinfo=UTC), tick=False):
        write_events(3)
        seal_pending()
        from io import StringIO

        out = StringIO()
        call_command("verify_audit_log", "--month", "2026-10", stdout=out)

    assert out.getvalue() == "OK: 3 events verified in 1 month(s)\n"


def test_verify_rejects_a_malformed_month(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--month must look like 2026-11"):
        call_command("verify_audit_log", "--month", "november")


def test_events_far_from_now_land_in_the_default_partition(db):
    with time_machine.travel(datetime(2031, 5, 1, tzinfo=UTC), tick=False):
        [event] = write_events(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM audit_accessevent WHERE id = %s", [event.pk]
        )
        assert cursor.fetchone() == ("audit_accessevent_default",)


def test_actor_ip_is_stored_as_the_database_returns_it(db):
    patient = PatientFactory()
    actor = make_actor(patient.user)
    from dataclasses import replace

    actor = replace(actor, ip="2001:0db8:0000:0000:0000:0000:0000:0001", channel=Channel.WEB)
    [event] = record_access(actor=actor, action=Action.VIEW)
    seal_pending()

    event.refresh_from_db()
    assert event.ip == "2001:db8::1"
    assert verify_log().ok
