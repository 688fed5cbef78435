from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    VIEW = "view", _("View")
    LIST = "list", _("List")
    SEARCH = "search", _("Search")
    CREATE = "create", _("Create")
    UPDATE = "update", _("Update")
    CANCEL = "cancel", _("Cancel")
    RESCHEDULE = "reschedule", _("Reschedule")
    STATUS = "status", _("Status change")
    EXPORT = "export", _("Export")
    DENIED = "denied", _("Denied")


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    API = "api", _("REST API")
    FHIR = "fhir", _("FHIR API")
    ADMIN = "admin", _("Admin")
    TASK = "task", _("Background task")
    COMMAND = "command", _("Management command")


class ActorKind(models.TextChoices):
    ANONYMOUS = "anonymous", _("Anonymous")
    USER = "user", _("User")
    INTEGRATION = "integration", _("Integration")
    SYSTEM = "system", _("System")


class AccessEvent(models.Model):
    """One access to one appointment (or one access that returned none).

    Append-only: a database trigger refuses UPDATE, DELETE and TRUNCATE (audit/migrations/0003).
    Actor and subject ids are plain integers, not foreign keys: an event must outlive the account,
    appointment or integration it names, and no cascade may ever rewrite it. `mac` is a keyed hash
    of the content, computed when the event is written; audit.chain seals events into a hash
    chain after they commit. On PostgreSQL the table is partitioned by month of `occurred_at`.
    """

    occurred_at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    actor_label = models.CharField(max_length=100, blank=True)
    integration_id = models.BigIntegerField(null=True, blank=True)
    on_behalf_of_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("Practitioner a secretary or integration acted for.")
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    appointment_id = models.BigIntegerField(null=True, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True)
    practitioner_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("access event")
        verbose_name_plural = _("access events")
        # The review filters (audit pages, the patient's access log, quotas) each pair one id with
        # a time range.
        indexes = [
            models.Index(fields=["occurred_at"], name="audit_event_time"),
            models.Index(fields=["actor_user_id", "occurred_at"], name="audit_event_actor_time"),
            models.Index(fields=["patient_id", "occurred_at"], name="audit_event_patient_time"),
            models.Index(
                fields=["practitioner_id", "occurred_at"], name="audit_event_practitioner_time"
            ),
            # Partial: most events are not an integration's, and every index costs each insert.
            models.Index(
                fields=["integration_id", "occurred_at"],
                name="audit_event_integration_time",
                condition=models.Q(integration_id__isnull=False),
            ),
            models.Index(fields=["appointment_id"], name="audit_event_appointment"),
        ]

    def __str__(self) -> str:
        return f"{self.action} appointment #{self.appointment_id} by {self.actor_kind}"


class AuditSeal(models.Model):
    """An event's place in the hash chain of its month: `hash` = HMAC(key, previous hash, event id,
    event mac). Written by audit.chain.seal_pending only, after the event's transaction commits,
    so writers never wait for one another. Append-only like the events."""

    month = models.DateField()  # first day of the event's month (UTC)
    seq = models.PositiveBigIntegerField()
    event_id = models.BigIntegerField(unique=True)
    event_occurred_at = models.DateTimeField()
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["month", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["month", "seq"], name="audit_auditseal_month_seq"),
        ]

    def __str__(self) -> str:
        return f"Seal {self.month:%Y-%m} #{self.seq} (event #{self.event_id})"


class AuditCheckpoint(models.Model):
    """What retention removed: a month's event count and final chain hash, signed with the chain
    key, so what remains still verifies and the removal is accounted for."""

    month = models.DateField(unique=True)
    event_count = models.PositiveBigIntegerField()
    last_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"Checkpoint {self.month:%Y-%m} ({self.event_count} events)"


class Alert(models.Model):
    """Something in the access log an admin should look at (audit.alerts raises them)."""

    class Kind(models.TextChoices):
        OUTSIDE_AGENDA = "outside_agenda", _("Staff read patients outside their agendas")
        HARVEST = "harvest", _("Bulk reading (harvest)")
        QUOTA = "quota", _("Quota exceeded")
        OTP_FAILURES = "otp_failures", _("Repeated second-factor failures")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    integration_id = models.BigIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True, help_text=_("Ids and counts only."))
    event_count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    acknowledged_by_id = models.BigIntegerField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [models.Index(fields=["status", "-last_seen"], name="audit_alert_open")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"
