"""Model fields for personal data: encrypted at rest, looked up only through a blind index."""

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.lookups import IsNull

from accounts import crypto


class EncryptedTextField(models.TextField):
    """Text stored as an AES-GCM token bound to its table and column.

    Filtering on it is refused (only `isnull`): ciphertexts are randomized, so an equality filter
    would silently match nothing. Use the companion BlindIndexField for lookups.
    """

    def context(self) -> str:
        return f"{self.model._meta.db_table}.{self.column}"

    def get_lookup(self, lookup_name: str) -> Any:
        return IsNull if lookup_name == "isnull" else None

    def to_plaintext(self, value: Any) -> str:
        return str(value)

    def from_plaintext(self, value: str) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.encrypt(self.to_plaintext(value), context=self.context())

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return self.from_plaintext(crypto.decrypt(value, context=self.context()))


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
    """HMAC of another field's normalized plaintext, computed whenever the row is written."""

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

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        plaintext = getattr(model_instance, self.source)
        value = crypto.blind_index(str(plaintext), kind=self.kind) if plaintext else None
        setattr(model_instance, self.attname, value)
        return value
