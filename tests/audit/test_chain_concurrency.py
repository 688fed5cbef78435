"""The chain under concurrent writers and sealers, on PostgreSQL: one chain per month, nothing
lost, and writers never wait for the chain (it is not a global lock)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from audit.chain import SEALER_LOCK, seal_pending, verify_log
from audit.models import AccessEvent, Action, AuditSeal
from audit.services import AppointmentRef, record_access
from tests.factories import UserFactory, make_actor

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 8
TRANSACTIONS_PER_WRITER = 25
EVENTS_PER_TRANSACTION = 4


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    assert connection.vendor == "postgresql", "the chain concurrency tests need PostgreSQL"


def run_threads(targets: list) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(target) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_parallel_writers_and_sealers_make_one_intact_chain():
    actor = make_actor(UserFactory())
    stop = threading.Event()

    def writer(number: int) -> None:
        for batch in range(TRANSACTIONS_PER_WRITER):
            with transaction.atomic():
                refs = [
                    AppointmentRef(id=number * 10_000 + batch * 10 + i, patient_id=number)
                    for i in range(EVENTS_PER_TRANSACTION)
                ]
                record_access(actor=actor, action=Action.VIEW, appointments=refs)
                time.sleep(0.001)  # commit order differs from id order

    def sealer() -> None:
        while not stop.is_set():
            seal_pending()

    writers = [lambda n=n: writer(n) for n in range(WRITERS)]
    sealers = [sealer, sealer, sealer]
    sealer_threads_errors: list[BaseException] = []
    sealer_thread = threading.Thread(
        target=lambda: sealer_threads_errors.extend(run_threads(sealers))
    )
    sealer_thread.start()
    try:
        errors = run_threads(writers)
    finally:
        stop.set()
        sealer_thread.join(timeout=60)
    assert errors == []
    assert sealer_threads_errors == []
    seal_pending()

    total = WRITERS * TRANSACTIONS_PER_WRITER * EVENTS_PER_TRANSACTION
    assert AccessEvent.objects.count() == total
    seqs = sorted(AuditSeal.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))  # one chain: no fork, no gap, no duplicate
    result = verify_log()
    assert result.ok, result.problem
    assert result.verified == total


def test_writers_do_not_wait_while_a_sealer_holds_the_chain():
    actor = make_actor(UserFactory())
    holder = connections.create_connection("default")
    holder.connect()
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK])
        started = time.monotonic()
        with transaction.atomic():
            record_access(actor=actor, action=Action.VIEW, appointments=[AppointmentRef(id=1)])
        elapsed = time.monotonic() - started
        # A sealer is stuck holding the chain: writing an access is not held up by it.
        assert elapsed < 2
        assert AccessEvent.objects.count() == 1
    finally:
        with holder.cursor() as cursor:
            cursor.execute("ROLLBACK")
        holder.close()
    assert seal_pending() == 1
