from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import BlindIndexField, EncryptedDateField, EncryptedTextField


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
    first_name = EncryptedTextField(_("first name"))
    last_name = EncryptedTextField(_("last name"))
    birth_date = EncryptedDateField(_("birth date"), null=True, blank=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    phone_index = BlindIndexField(source="phone", kind="phone", db_index=True)
    email = EncryptedTextField(_("email"), blank=True)
    email_index = BlindIndexField(source="email", kind="email", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")

    def __str__(self) -> str:
        return f"Patient #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Relative(models.Model):
    """Someone a patient books for (a child, a parent)."""

    class Relationship(models.TextChoices):
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        PARTNER = "partner", _("Partner")
        OTHER = "other", _("Other")

    managed_by = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="relatives")
    first_name = EncryptedTextField(_("first name"))
    last_name = EncryptedTextField(_("last name"))
    birth_date = EncryptedDateField(_("birth date"), null=True, blank=True)
    relationship = models.CharField(
        _("relationship"), max_length=10, choices=Relationship.choices, default=Relationship.CHILD
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("relative")
        verbose_name_plural = _("relatives")

    def __str__(self) -> str:
        return f"Relative #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"
