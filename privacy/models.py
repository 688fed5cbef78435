from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BreachReport(models.Model):
    """One analysis of a suspected personal data breach by an integration over a time window,
    kept as the record GDPR article 33(5) asks for: the facts (counts, first and last access),
    the draft notification and what was done (notified, revoked).

    One report per integration and window: running `breach_report` again on the same window
    updates the counts and reuses the report, so its article 34 messages (keyed by report id
    and recipient) go out once. Ids and counts only, never a name; the integration is a plain
    id, like the audit log's, so the record outlives it.
    """

    integration_id = models.BigIntegerField()
    integration_name = models.CharField(max_length=120, blank=True)
    since = models.DateTimeField()
    until = models.DateTimeField()  # exclusive
    events = models.PositiveIntegerField(default=0)
    patients = models.PositiveIntegerField(default=0)
    identified_patients = models.PositiveIntegerField(
        default=0, help_text=_("Patients whose name and phone number the integration could read.")
    )
    appointments = models.PositiveIntegerField(default=0)
    practitioners = models.PositiveIntegerField(default=0)
    denied = models.PositiveIntegerField(default=0)
    first_access = models.DateTimeField(null=True, blank=True)
    last_access = models.DateTimeField(null=True, blank=True)
    draft = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    patients_notified = models.PositiveIntegerField(default=0)
    practitioners_notified = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("breach report")
        verbose_name_plural = _("breach reports")
        constraints = [
            models.UniqueConstraint(
                fields=["integration_id", "since", "until"],
                name="privacy_breachreport_one_per_window",
            ),
            models.CheckConstraint(
                condition=models.Q(since__lt=models.F("until")),
                name="privacy_breachreport_window_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Breach report #{self.pk} (integration #{self.integration_id})"
