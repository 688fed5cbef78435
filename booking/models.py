from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from patients.models import Patient, Relative
from practitioners.models import Practitioner, VisitReason


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        ARRIVED = "arrived", _("Arrived")
        DONE = "done", _("Done")
        NO_SHOW = "no_show", _("No-show")
        CANCELLED = "cancelled", _("Cancelled")

    class Channel(models.TextChoices):
        WEB = "web", _("Web")
        API = "api", _("API")
        FHIR = "fhir", _("FHIR")
        PHONE = "phone", _("Phone")

    class CancelledBy(models.TextChoices):
        PATIENT = "patient", _("Patient")
        PRACTICE = "practice", _("Practice")
        SYSTEM = "system", _("System")

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="appointments"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    relative = models.ForeignKey(
        Relative, on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    reason = models.ForeignKey(VisitReason, on_delete=models.PROTECT, related_name="appointments")
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.BOOKED
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_by = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)
    cancelled_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancellation_reason = models.CharField(_("cancellation reason"), max_length=300, blank=True)
    rescheduled_from = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rescheduled_to"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start"]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")), name="booking_appointment_order"
            ),
            # The no-overlap exclusion constraint is PostgreSQL-only: see migration 0002.
        ]
        indexes = [
            models.Index(fields=["practitioner", "start"], name="booking_appt_pract_start"),
            models.Index(fields=["patient", "start"], name="booking_appt_patient_start"),
        ]

    def __str__(self) -> str:
        return f"Appointment #{self.pk} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.CANCELLED


ACTIVE_STATUSES = [s for s in Appointment.Status if s != Appointment.Status.CANCELLED]

# Status workflow (staff only): which status may follow which.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Appointment.Status.BOOKED: frozenset(
        {Appointment.Status.ARRIVED, Appointment.Status.NO_SHOW, Appointment.Status.DONE}
    ),
    Appointment.Status.ARRIVED: frozenset({Appointment.Status.DONE, Appointment.Status.BOOKED}),
    Appointment.Status.NO_SHOW: frozenset({Appointment.Status.BOOKED, Appointment.Status.ARRIVED}),
    Appointment.Status.DONE: frozenset({Appointment.Status.ARRIVED}),
    Appointment.Status.CANCELLED: frozenset(),
}


class WaitlistEntry(models.Model):
    """A patient who would take an earlier slot than their booked appointment."""

    appointment = models.OneToOneField(
        Appointment, on_delete=models.CASCADE, related_name="waitlist_entry"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("waiting-list entry")
        verbose_name_plural = _("waiting-list entries")

    def __str__(self) -> str:
        return f"Waiting-list entry #{self.pk}"


class WaitlistOffer(models.Model):
    """A freed slot offered to a waitlisted patient; the first to take it gets it."""

    class Status(models.TextChoices):
        OFFERED = "offered", _("Offered")
        TAKEN = "taken", _("Taken")
        GONE = "gone", _("Taken by someone else")
        EXPIRED = "expired", _("Expired")

    entry = models.ForeignKey(WaitlistEntry, on_delete=models.CASCADE, related_name="offers")
    start = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFERED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("waiting-list offer")
        verbose_name_plural = _("waiting-list offers")
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "start"], name="booking_waitlistoffer_once_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"Waiting-list offer #{self.pk} ({self.status})"


class NextSlots(models.Model):
    """The next free slots of one practitioner for one online reason: what search sorts by.

    Maintained by booking.next_slots (after bookings, cancellations and schedule changes), and
    recomputed when read once `valid_until` has passed: time alone makes a first slot too soon.
    """

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="+")
    reason = models.ForeignKey(VisitReason, on_delete=models.CASCADE, related_name="+")
    slots = models.JSONField(default=list, help_text="Up to three ISO UTC starts, ascending.")
    first_slot = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()
    valid_until = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("next free slots")
        verbose_name_plural = _("next free slots")
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "reason"], name="booking_nextslots_once_per_reason"
            ),
        ]
        # Search sorts practitioners by their earliest first slot: one index probe each.
        indexes = [
            models.Index(fields=["practitioner", "first_slot"], name="booking_nextslots_first"),
        ]

    def __str__(self) -> str:
        return f"Next slots of practitioner #{self.practitioner_id}, reason #{self.reason_id}"
