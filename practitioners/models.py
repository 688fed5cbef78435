from datetime import date, timedelta
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

rpps_validator = RegexValidator(r"^\d{11}$", _("An RPPS number is exactly 11 digits."), "rpps")


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone."), params={"value": value})


def default_reminder_hours() -> list[int]:
    return [24, 2]


MAX_REMINDERS = 3
MAX_REMINDER_HOURS = 24 * 7


def validate_reminder_hours(value: object) -> None:
    """A list of at most MAX_REMINDERS distinct whole hours, each 1 to MAX_REMINDER_HOURS."""
    if not isinstance(value, list) or not all(
        isinstance(hours, int) and not isinstance(hours, bool) for hours in value
    ):
        raise ValidationError(_("Give whole numbers of hours."), code="reminder_hours")
    if len(value) > MAX_REMINDERS:
        raise ValidationError(
            _("At most %(count)d reminders."), params={"count": MAX_REMINDERS}, code="too_many"
        )
    if len(set(value)) != len(value):
        raise ValidationError(_("Each reminder must be at a different time."), code="duplicate")
    if any(not 1 <= hours <= MAX_REMINDER_HOURS for hours in value):
        raise ValidationError(
            _("Each reminder is between 1 and %(max)d hours before the appointment."),
            params={"max": MAX_REMINDER_HOURS},
            code="out_of_range",
        )


class Specialty(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")

    def __str__(self) -> str:
        return self.name


class Practice(models.Model):
    name = models.CharField(_("name"), max_length=150)
    address = models.CharField(_("address"), max_length=200)
    postcode = models.CharField(_("postcode"), max_length=10)
    city = models.CharField(_("city"), max_length=100, db_index=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Paris", validators=[validate_timezone]
    )

    class Meta:
        verbose_name = _("practice")
        verbose_name_plural = _("practices")

    def __str__(self) -> str:
        return f"{self.name}, {self.city}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PracticeMember(models.Model):
    """Someone who works at a practice (its secretaries). Practitioners belong through their
    `practice`; a practitioner grants a member access to their own agenda (StaffAccess)."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="practice_memberships"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("practice member")
        verbose_name_plural = _("practice members")
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "user"], name="practitioners_practicemember_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Member #{self.user_id} of practice #{self.practice_id}"


class Practitioner(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="practitioner",
    )
    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, related_name="practitioners")
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="practitioners")
    rpps = models.CharField(
        _("RPPS number"), max_length=11, unique=True, validators=[rpps_validator]
    )
    accepts_new_patients = models.BooleanField(_("accepts new patients"), default=True)
    online_booking_enabled = models.BooleanField(_("online booking"), default=True)
    minimum_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"), default=120, validators=[MaxValueValidator(60 * 24 * 30)]
    )
    booking_horizon_days = models.PositiveSmallIntegerField(
        _("booking horizon (days)"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    reminders_enabled = models.BooleanField(_("send reminders"), default=True)
    reminder_hours = models.JSONField(
        _("reminders (hours before)"),
        default=default_reminder_hours,
        blank=True,
        validators=[validate_reminder_hours],
        help_text=_("For example [24, 2]: a reminder the day before and two hours before."),
    )
    cancellation_notice_hours = models.PositiveSmallIntegerField(
        _("cancellation notice (hours)"), default=24, validators=[MaxValueValidator(24 * 14)]
    )
    no_show_limit = models.PositiveSmallIntegerField(
        _("block online booking after this many no-shows"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("Leave empty to never block. The practice can still book by phone."),
    )

    class Meta:
        ordering = ["last_name", "first_name"]
        verbose_name = _("practitioner")
        verbose_name_plural = _("practitioners")
        constraints = [
            models.CheckConstraint(
                condition=Q(rpps__regex=r"^[0-9]{11}$"), name="practitioners_practitioner_rpps"
            ),
        ]

    def __str__(self) -> str:
        return f"Dr {self.first_name} {self.last_name}"

    def get_absolute_url(self) -> str:
        return reverse("practitioner", kwargs={"slug": self.slug})

    @property
    def display_name(self) -> str:
        return str(self)

    @property
    def minimum_notice(self) -> timedelta:
        return timedelta(minutes=self.minimum_notice_minutes)

    @property
    def cancellation_notice(self) -> timedelta:
        return timedelta(hours=self.cancellation_notice_hours)


class VisitReason(models.Model):
    class PatientKind(models.TextChoices):
        ALL = "all", _("All patients")
        NEW = "new", _("New patients")
        EXISTING = "existing", _("Existing patients")

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="reasons")
    label = models.CharField(_("label"), max_length=120)
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(5), MaxValueValidator(480)]
    )
    online_bookable = models.BooleanField(_("bookable online"), default=True)
    patient_kind = models.CharField(
        _("for"), max_length=10, choices=PatientKind.choices, default=PatientKind.ALL
    )
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("visit reason")
        verbose_name_plural = _("visit reasons")
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5), name="practitioners_visitreason_duration"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.duration_minutes} min)"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


class WeeklyHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="weekly_hours"
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("from (local time)"))
    end_time = models.TimeField(_("to (local time)"))
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    reasons = models.ManyToManyField(
        VisitReason,
        blank=True,
        related_name="weekly_hours",
        help_text=_("Leave empty to open these hours to every reason."),
    )

    class Meta:
        ordering = ["weekday", "start_time"]
        verbose_name = _("weekly hours")
        verbose_name_plural = _("weekly hours")
        constraints = [
            models.CheckConstraint(
                condition=Q(start_time__lt=F("end_time")), name="practitioners_weeklyhours_order"
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="practitioners_weeklyhours_day"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lte=F("valid_until")),
                name="practitioners_weeklyhours_validity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def applies_on(self, day: date) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
        )


class Absence(models.Model):
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="absences"
    )
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    label = models.CharField(_("label"), max_length=120, blank=True)

    class Meta:
        ordering = ["start"]
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        constraints = [
            models.CheckConstraint(
                condition=Q(start__lt=F("end")), name="practitioners_absence_order"
            ),
        ]
        indexes = [models.Index(fields=["practitioner", "start"])]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} - {self.end:%Y-%m-%d %H:%M}"


class StaffAccess(models.Model):
    """A secretary's access to a practitioner's agenda, granted by the practitioner."""

    class Level(models.TextChoices):
        VIEW = "view", _("View")
        MANAGE = "manage", _("Manage")

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="staff_access"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_access"
    )
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.VIEW)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("staff access")
        verbose_name_plural = _("staff access")
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "user"], name="practitioners_staffaccess_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} on practitioner #{self.practitioner_id}"


class StaffAccessChange(models.Model):
    """Who gave, changed or withdrew a secretary's access, and who joined or left a practice.

    Reviewable history in the admin: StaffAccess only holds the present. Not the audit log, which
    records accesses to appointment data. Rows outlive the accounts they name (SET_NULL).
    """

    class Action(models.TextChoices):
        GRANTED = "granted", _("Access granted")
        CHANGED = "changed", _("Access changed")
        WITHDRAWN = "withdrawn", _("Access withdrawn")
        MEMBER_ADDED = "member_added", _("Added to the practice")
        MEMBER_INVITED = "member_invited", _("Invited to the practice")
        MEMBER_REMOVED = "member_removed", _("Removed from the practice")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    level = models.CharField(
        _("level"), max_length=10, choices=StaffAccess.Level.choices, blank=True
    )
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("staff access change")
        verbose_name_plural = _("staff access changes")
        indexes = [models.Index(fields=["practice", "at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.at:%Y-%m-%d %H:%M})"
