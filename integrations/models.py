from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from practitioners.models import Practitioner


class Integration(models.Model):
    """Third-party practitioner software. It authenticates with OAuth2 client credentials (its
    `application`, whose secret django-oauth-toolkit stores hashed) and sees only what practitioners
    granted it (Grant)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        REVOKED = "revoked", _("Revoked")

    name = models.CharField(_("name"), max_length=120, unique=True)
    vendor = models.CharField(_("vendor"), max_length=120, blank=True)
    contact_email = models.EmailField(_("vendor contact"), blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.PROTECT, related_name="integration"
    )
    requests_per_minute = models.PositiveIntegerField(
        _("requests per minute"),
        default=120,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
    )
    # Why 500: a practice of 3 practitioners with ~30 appointments a day, synced a working week
    # ahead (today + 4 days), shows 3 x 30 x 5 = 450 distinct patients an hour, however often it
    # polls. A harvester gets at most this many an hour, and is suspended on repeated refusals
    # (integrations.detection). Larger practices: raise it per integration in the admin.
    patients_per_hour = models.PositiveIntegerField(
        _("distinct patients per hour"),
        default=500,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
    )
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Grant(models.Model):
    """A practitioner's consent for one integration: which scopes, until when. Revocable."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="grants")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="integration_grants"
    )
    scopes = models.JSONField(_("scopes"), default=list)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(_("until"), null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "practitioner"],
                condition=Q(revoked_at__isnull=True),
                name="integrations_grant_one_live_per_practitioner",
            ),
        ]

    def __str__(self) -> str:
        return f"Grant of practitioner #{self.practitioner_id} to {self.integration_id}"

    def is_live(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class QuotaWindow(models.Model):
    """The database fallback of integrations.quotas (without Redis): one counter per integration,
    quota and window (a minute of requests, an hour of distinct patients). Rows older than a day
    are purged by integrations.tasks."""

    class Kind(models.TextChoices):
        REQUESTS = "requests", _("Requests per minute")
        PATIENTS = "patients", _("Distinct patients per hour")

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="quota_windows"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind", "window_start"],
                name="integrations_quotawindow_one_per_window",
            ),
        ]
        indexes = [models.Index(fields=["window_start"], name="integrations_quota_start")]

    def __str__(self) -> str:
        return f"{self.kind} of integration #{self.integration_id} from {self.window_start}"


class QuotaPatient(models.Model):
    """A patient counted in an hourly window of the database fallback (distinct patients)."""

    window = models.ForeignKey(QuotaWindow, on_delete=models.CASCADE, related_name="patients")
    patient_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["window", "patient_id"], name="integrations_quotapatient_once_per_window"
            ),
        ]

    def __str__(self) -> str:
        return f"Patient #{self.patient_id} in window #{self.window_id}"
