"""Model fields for personal data: encrypted at rest, looked up only through a blind index.

An encrypted value is bound to its table, column and row: the associated data of its token is
`<table>.<column>.<crypto_row_id>`, where `crypto_row_id` is a random UUID field every model with
encrypted fields declares (a system check insists). A UUID rather than the primary key because it
exists from the moment the instance does, so `bulk_create` and `create` encrypt in one INSERT.

Reading: the database value stays a `Sealed` token in the instance until the attribute is read;
the descriptor then decrypts it with the instance's row id and keeps the plaintext. Anything that
reads the column without an instance (`values()`, `values_list()`, annotations) gets `Sealed`
objects, which refuse to become text. Writing: `pre_save` encrypts the plaintext with the row id,
on `save()` and `bulk_create()`. `QuerySet.update()` and `bulk_update()` have no instance: through
`EncryptedQuerySet` (the managers of the models with encrypted fields) they encrypt row by row and
recompute the blind indexes of the fields they change; through any other queryset they are refused,
except to blank a value (`""` or `None`, which are stored as such).
"""

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models.lookups import IsNull
from django.db.models.query_utils import DeferredAttribute

from accounts import crypto

ROW_ID_FIELD = "crypto_row_id"


class Sealed:
    """A stored token read without its model instance: not the plaintext, and never shown."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "<Sealed encrypted value>"

    def __str__(self) -> str:
        raise TypeError(
            "An encrypted value read without its row (values()/values_list()?): "
            "load model instances and read the attribute."
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class _Ciphertext(str):
    """A token encrypted by pre_save for its row: the only non-empty value written to a column."""

    __slots__ = ()


class EncryptedAttribute(DeferredAttribute):
    """Decrypts on first read with the instance's row id, then keeps the plaintext."""

    field: "EncryptedTextField"

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)  # loads a deferred column
        if isinstance(value, Sealed):
            value = self.field.open(value.token, instance)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """Text stored as an AES-GCM token bound to its table, column and row.

    Filtering on it is refused (only `isnull`): ciphertexts are randomized, so an equality filter
    would silently match nothing. Use the companion BlindIndexField for lookups.
    """

    descriptor_class = EncryptedAttribute

    def column_context(self) -> str:
        """The associated data of v1 tokens, written before values were bound to their row."""
        return f"{self.model._meta.db_table}.{self.column}"

    def row_context(self, instance: models.Model) -> str:
        row_id = getattr(instance, ROW_ID_FIELD, None)
        if not row_id:
            raise crypto.DecryptionError(f"{self.model._meta.label} has no {ROW_ID_FIELD}")
        return f"{self.column_context()}.{row_id}"

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        try:
            row_field = self.model._meta.get_field(ROW_ID_FIELD)
        except FieldDoesNotExist:
            row_field = None
        if not isinstance(row_field, models.UUIDField) or not row_field.unique:
            errors.append(
                checks.Error(
                    f"A model with encrypted fields needs a unique UUIDField {ROW_ID_FIELD}.",
                    obj=self,
                    id="accounts.E001",
                )
            )
        manager = getattr(self.model, "_default_manager", None)
        if manager is not None and not isinstance(manager.get_queryset(), EncryptedQuerySet):
            errors.append(
                checks.Error(
                    "A model with encrypted fields needs a default manager whose queryset is an "
                    "EncryptedQuerySet, so that update() encrypts for each row.",
                    obj=self,
                    id="accounts.E002",
                )
            )
        return errors

    def get_lookup(self, lookup_name: str) -> Any:
        return IsNull if lookup_name == "isnull" else None

    def to_plaintext(self, value: Any) -> str:
        return str(value)

    def from_plaintext(self, value: str) -> Any:
        return value

    def open(self, token: str, instance: models.Model) -> Any:
        """The value of a token stored in this field of `instance`'s row."""
        # v1 tokens are not bound to a row: reading them needs no row id (older migrations).
        row_id = None if token.startswith("v1:") else getattr(instance, ROW_ID_FIELD, None)
        return self.from_plaintext(self.decrypt_token(token, row_id=row_id, pk=instance.pk))

    def decrypt_token(self, token: str, *, row_id: Any, pk: Any) -> str:
        legacy = self.column_context()
        try:
            return crypto.decrypt(token, context=f"{legacy}.{row_id}", legacy_context=legacy)
        except crypto.DecryptionError as exc:
            # Ids only: the message may reach a log.
            where = f"{self.model._meta.label}.{self.name} of row pk={pk}"
            raise crypto.DecryptionError(f"{where}: {exc}") from exc

    def reseal(self, token: str, *, row_id: Any, pk: Any) -> str | None:
        """The token re-encrypted under the newest key and format, or None when it already is.
        For rotation, which reads rows as tuples rather than instances."""
        if not crypto.needs_reencryption(token):
            return None
        plaintext = self.decrypt_token(token, row_id=row_id, pk=pk)
        return crypto.encrypt(plaintext, context=f"{self.column_context()}.{row_id}")

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if value is None or value == "":
            return value
        plaintext = self.to_plaintext(value)
        if not plaintext:
            return ""
        return _Ciphertext(crypto.encrypt(plaintext, context=self.row_context(model_instance)))

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        if isinstance(value, _Ciphertext):
            return str(value)
        raise TypeError(
            f"{self.model._meta.label}.{self.name} is encrypted for its row: write it through "
            "save(), bulk_create() or an EncryptedQuerySet's update() and bulk_update()."
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return Sealed(value)


class EncryptedDateField(EncryptedTextField):
    """A date (birth date) stored encrypted as its ISO form."""

    def to_python(self, value: Any) -> date | None:
        if value is None or value == "" or isinstance(value, date):
            return value or None
        try:
            return date.fromisoformat(str(value))
        except ValueError as exc:
            raise ValidationError("Enter a valid date (YYYY-MM-DD).", code="invalid") from exc

    def to_plaintext(self, value: Any) -> str:
        parsed = self.to_python(value)
        return parsed.isoformat() if parsed else ""

    def from_plaintext(self, value: str) -> Any:
        return date.fromisoformat(value)

    def formfield(self, **kwargs: Any) -> Any:
        from django import forms

        return super(models.TextField, self).formfield(form_class=forms.DateField, **kwargs)


class BlindIndexField(models.CharField):
    """HMAC of another field's normalized plaintext under the newest index key, computed whenever
    the row is written; `rotate_blind_index` recomputes rows written under an older key."""

    def __init__(self, *args: Any, source: str, kind: str, **kwargs: Any) -> None:
        self.source = source
        self.kind = kind
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, kind=self.kind)
        return name, path, args, kwargs

    def compute(self, plaintext: Any) -> str | None:
        return crypto.blind_index(str(plaintext), kind=self.kind) if plaintext else None

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        value = self.compute(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value


class EncryptedQuerySet(models.QuerySet[Any]):
    """`update()` and `bulk_update()` that encrypt each value for its row.

    One UPDATE per row for the encrypted columns (each row has its own associated data), in the
    caller's transaction or one of their own; blind indexes of the changed fields follow. Blanking
    (`""`, `None`) stays a single UPDATE.
    """

    def _sealed(self, names: Iterable[str]) -> tuple[list["models.Field[Any, Any]"], set[str]]:
        """The encrypted fields among `names` plus the blind indexes computed from them."""
        meta = self.model._meta
        fields = [meta.get_field(name) for name in names]
        encrypted = [f for f in fields if isinstance(f, EncryptedTextField)]
        sources = {f.name for f in encrypted}
        indexes = [f for f in meta.concrete_fields if isinstance(f, BlindIndexField)]
        return encrypted + [f for f in indexes if f.source in sources], sources  # type: ignore[misc]

    def update(self, **kwargs: Any) -> int:
        sealed, sources = self._sealed(kwargs)
        if not sealed:
            return super().update(**kwargs)
        if all(kwargs[name] in (None, "") for name in sources):
            blanks = {f.name: None for f in sealed if isinstance(f, BlindIndexField)}
            return super().update(**kwargs, **blanks)
        plain = {name: value for name, value in kwargs.items() if name not in sources}
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            rows = self.model._base_manager.using(self.db).filter(pk__in=pks)
            if plain:
                rows.update(**plain)
            for row in rows.only("pk", ROW_ID_FIELD):
                for name in sources:
                    setattr(row, name, kwargs[name])
                self._write_row(row, sealed)
        return len(pks)

    def bulk_update(
        self, objs: Iterable[Any], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        fields = list(fields)
        sealed, sources = self._sealed(fields)
        if not sealed:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        objs = list(objs)
        plain = [name for name in fields if name not in sources]
        with transaction.atomic(using=self.db):
            if plain:
                super().bulk_update(objs, plain, batch_size=batch_size)
            for obj in objs:
                self._write_row(obj, sealed)
        return len(objs)

    def _write_row(self, row: models.Model, fields: list["models.Field[Any, Any]"]) -> None:
        values = {field.attname: field.pre_save(row, False) for field in fields}
        models.QuerySet(self.model, using=self.db).filter(pk=row.pk).update(**values)


class EncryptedManager(models.Manager[Any]):
    """The default manager of a model with encrypted fields (see EncryptedQuerySet)."""

    def get_queryset(self) -> EncryptedQuerySet:
        return EncryptedQuerySet(self.model, using=self._db)
