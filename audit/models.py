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

    Append-only. Actor and subject ids are plain integers, not foreign keys: an event must outlive
    the account, appointment or integration it names, and no cascade may ever rewrite it.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_role = models.CharField(max_length=16, blank=True)
    actor_label = models.CharField(max_length=100, blank=True)
    integration_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    on_behalf_of_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("Practitioner a secretary or integration acted for.")
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    appointment_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    practitioner_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("access event")
        verbose_name_plural = _("access events")

    def __str__(self) -> str:
        return f"{self.action} appointment #{self.appointment_id} by {self.actor_kind}"
