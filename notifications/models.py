from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    """An outbox row: written in the transaction of the change that causes it, delivered later.

    The recipient's address is not stored here: it is resolved at send time from the patient,
    practitioner or user, so a corrected email or an erased account is honoured.
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("Booking confirmation")
        CANCELLATION = "cancellation", _("Cancellation")
        RESCHEDULE = "reschedule", _("Reschedule")
        REMINDER = "reminder", _("Reminder")
        WAITLIST_OFFER = "waitlist_offer", _("Waiting-list offer")
        SECURITY_ALERT = "security_alert", _("Security alert")
        BREACH = "breach", _("Data breach notice")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")

    class Recipient(models.TextChoices):
        PATIENT = "patient", _("Patient")
        PRACTITIONER = "practitioner", _("Practitioner")
        USER = "user", _("User")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=16, choices=Recipient.choices)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        "booking.Appointment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    waitlist_offer = models.ForeignKey(
        "booking.WaitlistOffer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    context = models.JSONField(default=dict, blank=True, help_text=_("Never personal data."))
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    scheduled_for = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scheduled_for", "id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(
                fields=["scheduled_for"],
                name="notif_due_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} #{self.pk} ({self.status})"
