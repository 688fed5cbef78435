import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import (
    BlindIndexField,
    EncryptedDateField,
    EncryptedManager,
    EncryptedTextField,
)

# What an erased patient or relative is called where a name used to be (agenda, lists).
ERASED_NAME = _("(erased)")


class Patient(models.Model):
    """A person who books. Usually the profile of a user; staff may create one without an account
    (a phone booking). Every personal field is encrypted; lookups go through the blind indexes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient",
    )
    # Binds each encrypted value to this row (accounts.fields): a copied ciphertext does not open.
    crypto_row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    first_name = EncryptedTextField(_("first name"))
    last_name = EncryptedTextField(_("last name"))
    birth_date = EncryptedDateField(_("birth date"), null=True, blank=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    phone_index = BlindIndexField(source="phone", kind="phone", db_index=True)
    email = EncryptedTextField(_("email"), blank=True)
    email_index = BlindIndexField(source="email", kind="email", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Right to erasure (patients.gdpr): the row stays, without any personal data, because past
    # appointments (the practitioner's records) and the audit log name it by id.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)
    # When the account was told it would be erased for inactivity (purge_expired); a login or
    # an appointment after this date voids the warning.
    inactivity_warned_at = models.DateTimeField(null=True, blank=True)

    objects = EncryptedManager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")

    def __str__(self) -> str:
        return f"Patient #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or str(ERASED_NAME)


class Relative(models.Model):
    """Someone a patient books for (a child, a parent)."""

    class Relationship(models.TextChoices):
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        PARTNER = "partner", _("Partner")
        OTHER = "other", _("Other")

    managed_by = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="relatives")
    crypto_row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    first_name = EncryptedTextField(_("first name"))
    last_name = EncryptedTextField(_("last name"))
    birth_date = EncryptedDateField(_("birth date"), null=True, blank=True)
    relationship = models.CharField(
        _("relationship"), max_length=10, choices=Relationship.choices, default=Relationship.CHILD
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EncryptedManager()

    class Meta:
        verbose_name = _("relative")
        verbose_name_plural = _("relatives")

    def __str__(self) -> str:
        return f"Relative #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or str(ERASED_NAME)
