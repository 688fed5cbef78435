"""Key rotation over every model with encrypted fields or blind indexes (accounts.crypto).

Rows are walked in primary-key order, one batch per transaction, each batch locked with
SELECT ... FOR UPDATE: a user saving their profile meanwhile waits for the batch instead of
having their new value overwritten by the re-encryption of the old one. Values already under the
newest key and format (or indexes already under the newest index key) are left alone, so a run
that was interrupted resumes by being run again: it rewrites only what is left.
"""

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from django.apps import apps
from django.db import connection, models, transaction

from accounts import crypto
from accounts.fields import ROW_ID_FIELD, BlindIndexField, EncryptedTextField, Sealed


@dataclass
class Batch:
    rows: int
    rewritten: int


def encrypted_fields(model: type[models.Model]) -> list[EncryptedTextField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def index_fields(model: type[models.Model]) -> list[BlindIndexField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)]


def encrypted_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if encrypted_fields(m)]


def indexed_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if index_fields(m)]


def _walk(
    model: type[models.Model],
    columns: list[str],
    batch_size: int,
    process: Callable[[list[tuple[Any, ...]]], int],
) -> Iterator[Batch]:
    """Batches of (pk, row id, *columns) locked and handed to `process` (which writes and says
    how many rows it rewrote) in a transaction of their own, committed before the batch is
    reported: whatever stops the walk, every reported batch is done."""
    last = None
    while True:
        with transaction.atomic():
            rows = model._base_manager.select_for_update().order_by("pk")
            if last is not None:
                rows = rows.filter(pk__gt=last)
            batch = list(rows.values_list("pk", ROW_ID_FIELD, *columns)[:batch_size])
            if not batch:
                return
            rewritten = process(batch)
        last = batch[-1][0]
        yield Batch(rows=len(batch), rewritten=rewritten)


def _write(model: type[models.Model], columns: list[str], updates: list[list[Any]]) -> None:
    """One UPDATE per row, pipelined by psycopg: faster than a CASE over the batch."""
    if not updates:
        return
    quote = connection.ops.quote_name
    pk_column = str(model._meta.pk.column)  # type: ignore[union-attr]
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    statement = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608 - model metadata
        f"WHERE {quote(pk_column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.executemany(statement, updates)


def rotate_encryption(model: type[models.Model], *, batch_size: int) -> Iterator[Batch]:
    """Re-encrypt every value of the model not yet under the newest key and format."""
    fields = encrypted_fields(model)

    def process(batch: list[tuple[Any, ...]]) -> int:
        updates = []
        for pk, row_id, *stored in batch:
            tokens = [value.token if isinstance(value, Sealed) else value for value in stored]
            fresh = [
                field.reseal(token, row_id=row_id, pk=pk) if token else None
                for field, token in zip(fields, tokens, strict=True)
            ]
            if any(fresh):
                updates.append([new or old for new, old in zip(fresh, tokens, strict=True)] + [pk])
        _write(model, [str(field.column) for field in fields], updates)
        return len(updates)

    return _walk(model, [field.attname for field in fields], batch_size, process)


def count_stale_values(model: type[models.Model], *, batch_size: int) -> Iterator[Batch]:
    """Like rotate_encryption, without writing: rows holding a value to re-encrypt."""
    fields = encrypted_fields(model)
    rows = model._base_manager.order_by("pk").values_list(*[f.attname for f in fields])
    stale = 0
    seen = 0
    for stored in rows.iterator(chunk_size=batch_size):
        seen += 1
        stale += any(
            isinstance(value, Sealed) and crypto.needs_reencryption(value.token) for value in stored
        )
        if seen == batch_size:
            yield Batch(rows=seen, rewritten=stale)
            seen = stale = 0
    if seen:
        yield Batch(rows=seen, rewritten=stale)


def rotate_index(model: type[models.Model], *, batch_size: int) -> Iterator[Batch]:
    """Recompute every blind index of the model with the newest index key."""
    fields = index_fields(model)
    sources: list[Any] = [model._meta.get_field(field.source) for field in fields]

    def process(batch: list[tuple[Any, ...]]) -> int:
        updates = []
        for pk, row_id, *values in batch:
            stored, indexes = values[: len(fields)], values[len(fields) :]
            fresh = [
                field.compute(_plaintext(source, value, row_id=row_id, pk=pk))
                for field, source, value in zip(fields, sources, stored, strict=True)
            ]
            if fresh != indexes:
                updates.append([*fresh, pk])
        _write(model, [str(field.column) for field in fields], updates)
        return len(updates)

    columns = [s.attname for s in sources] + [field.attname for field in fields]
    return _walk(model, columns, batch_size, process)


def _plaintext(source: Any, value: Any, *, row_id: Any, pk: Any) -> Any:
    if isinstance(value, Sealed):
        return source.from_plaintext(source.decrypt_token(value.token, row_id=row_id, pk=pk))
    return value


# --- Progress ------------------------------------------------------------------------------


class Progress:
    """`label  [#####.....]  done/total rows  N rows/s` on stderr: redrawn in place on a
    terminal, one line every few seconds otherwise (logs of a job runner)."""

    WIDTH = 30

    def __init__(self, label: str, total: int, stream: TextIO | Any = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.started = self.drawn = time.monotonic()
        self.live = self.stream.isatty()

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self.drawn >= (0.2 if self.live else 5.0):
            self.drawn = now
            self._draw(final=False)

    def finish(self) -> None:
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"{self.label:<22} [{bar}] {self.done}/{self.total} rows  {self.rate:,.0f} rows/s"
        if self.live:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def run_all(
    models_: list[type[models.Model]],
    step: Callable[..., Iterator[Batch]],
    *,
    batch_size: int,
    stream: TextIO | Any = None,
) -> dict[str, Batch]:
    """Run one rotation step over each model with a progress bar; totals per model label."""
    totals = {}
    for model in models_:
        progress = Progress(model._meta.label, model._base_manager.count(), stream)
        total = Batch(rows=0, rewritten=0)
        for batch in step(model, batch_size=batch_size):
            total.rows += batch.rows
            total.rewritten += batch.rewritten
            progress.advance(batch.rows)
        progress.finish()
        totals[model._meta.label] = total
    return totals
