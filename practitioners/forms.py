"""Forms of the agenda settings pages. They check what a form can (ranges, formats); the services
check again, and what needs the database (overlapping hours, booked appointments), raising
InvalidInput that the views turn into form errors.

Date and time fields are read in the practice's time zone: the views validate them inside
`timezone.override(practice.tz)`.
"""

import re
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from booking.errors import InvalidInput
from practitioners.models import (
    MAX_REMINDER_HOURS,
    MAX_REMINDERS,
    Practitioner,
    StaffAccess,
    VisitReason,
    WeeklyHours,
    validate_reminder_hours,
)
from practitioners.services import BookingRules, HoursSpec, ReasonSpec

TIME_INPUT = {"type": "time"}
DATE_INPUT = {"type": "date"}
DATETIME_INPUT = {"type": "datetime-local"}


class SettingsForm(forms.Form):
    """Marks invalid inputs with aria-invalid and links them to their error text, which
    `practitioners/settings/_field.html` renders under the id `<field id>_errors` (as accounts'
    forms do), including errors a service raised after the form validated."""

    def full_clean(self) -> None:
        super().full_clean()
        self._mark_invalid()

    def add_service_error(self, error: InvalidInput) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)
        self._mark_invalid()

    def _mark_invalid(self) -> None:
        for name in self.errors:
            if name not in self.fields:
                continue
            bound = self[name]
            described_by = [f"{bound.auto_id}_errors"]
            if bound.help_text:
                described_by.append(f"{bound.auto_id}_helptext")
            self.fields[name].widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": " ".join(described_by)}
            )


def _reason_label(reason: VisitReason) -> str:
    return str(reason) if reason.active else f"{reason} ({gettext('inactive')})"


class HoursForm(SettingsForm):
    start_time = forms.TimeField(
        label=_("From"), widget=forms.TimeInput(attrs=TIME_INPUT, format="%H:%M")
    )
    end_time = forms.TimeField(
        label=_("To"), widget=forms.TimeInput(attrs=TIME_INPUT, format="%H:%M")
    )
    valid_from = forms.DateField(
        label=_("Valid from"),
        required=False,
        widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d"),
        help_text=_("Empty: already valid."),
    )
    valid_until = forms.DateField(
        label=_("Valid until"),
        required=False,
        widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d"),
        help_text=_("Empty: with no end date."),
    )
    reasons = forms.TypedMultipleChoiceField(
        label=_("Only for these visit reasons"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: open to every reason."),
    )

    def __init__(self, *args: Any, reasons: Sequence[VisitReason], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedMultipleChoiceField, self.fields["reasons"])
        field.choices = [(reason.pk, _reason_label(reason)) for reason in reasons]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if start and end and start >= end:
            self.add_error("end_time", _("The end must come after the start."))
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_from > valid_until:
            self.add_error("valid_until", _("The validity must end after it starts."))
        return cleaned

    def spec(self) -> HoursSpec:
        data = self.cleaned_data
        return HoursSpec(
            start_time=data["start_time"],
            end_time=data["end_time"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            reason_ids=frozenset(data["reasons"]),
        )


class AddHoursForm(HoursForm):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"),
        choices=WeeklyHours.Weekday.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    field_order = ["weekdays", "start_time", "end_time", "valid_from", "valid_until", "reasons"]


class EditHoursForm(HoursForm):
    weekday = forms.TypedChoiceField(
        label=_("Day"), choices=WeeklyHours.Weekday.choices, coerce=int
    )
    field_order = ["weekday", "start_time", "end_time", "valid_from", "valid_until", "reasons"]

    @staticmethod
    def initial_for(hours: WeeklyHours) -> dict[str, Any]:
        return {
            "weekday": hours.weekday,
            "start_time": hours.start_time,
            "end_time": hours.end_time,
            "valid_from": hours.valid_from,
            "valid_until": hours.valid_until,
            "reasons": [reason.pk for reason in hours.reasons.all()],
        }


class AbsenceForm(SettingsForm):
    start = forms.DateTimeField(
        label=_("From"), widget=forms.DateTimeInput(attrs=DATETIME_INPUT, format="%Y-%m-%dT%H:%M")
    )
    end = forms.DateTimeField(
        label=_("Until"), widget=forms.DateTimeInput(attrs=DATETIME_INPUT, format="%Y-%m-%dT%H:%M")
    )
    label = forms.CharField(label=_("Label"), required=False, max_length=120)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if isinstance(start, datetime) and isinstance(end, datetime) and start >= end:
            self.add_error("end", _("The end must come after the start."))
        return cleaned


class ReasonForm(SettingsForm):
    label = forms.CharField(label=_("Label"), max_length=120)
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=5, max_value=480, step_size=5
    )
    online_bookable = forms.BooleanField(label=_("Bookable online"), required=False)
    patient_kind = forms.ChoiceField(
        label=_("For"),
        choices=VisitReason.PatientKind.choices,
        widget=forms.RadioSelect,
        initial=VisitReason.PatientKind.ALL,
    )
    position = forms.IntegerField(
        label=_("Order"),
        min_value=0,
        max_value=999,
        initial=0,
        help_text=_("Reasons are listed to patients by this number, smallest first."),
    )

    @staticmethod
    def initial_for(reason: VisitReason) -> dict[str, Any]:
        return {
            name: getattr(reason, name)
            for name in ("label", "duration_minutes", "online_bookable", "patient_kind", "position")
        }

    def spec(self) -> ReasonSpec:
        return ReasonSpec(**self.cleaned_data)


def parse_reminder_hours(text: str) -> list[int]:
    """ "24, 2" → [24, 2]; raises ValidationError on anything else."""
    parts = [part for part in re.split(r"[\s,;]+", text.strip()) if part]
    if not all(part.isdigit() and len(part) < 6 for part in parts):
        raise ValidationError(_("Give whole numbers of hours, separated by commas."))
    hours = [int(part) for part in parts]
    validate_reminder_hours(hours)
    return sorted(hours, reverse=True)


class BookingRulesForm(SettingsForm):
    online_booking_enabled = forms.BooleanField(label=_("Patients may book online"), required=False)
    accepts_new_patients = forms.BooleanField(label=_("Accepting new patients"), required=False)
    minimum_notice_minutes = forms.IntegerField(
        label=_("Minimum notice (minutes)"),
        min_value=0,
        max_value=60 * 24 * 30,
        help_text=_("Online bookings start at least this long after the moment of booking."),
    )
    booking_horizon_days = forms.IntegerField(
        label=_("Booking horizon (days)"),
        min_value=1,
        max_value=365,
        help_text=_("How far ahead patients may book online."),
    )
    cancellation_notice_hours = forms.IntegerField(
        label=_("Cancellation notice (hours)"),
        min_value=0,
        max_value=24 * 14,
        help_text=_("Patients may cancel or move online up to this long before."),
    )
    reminders_enabled = forms.BooleanField(label=_("Send reminders"), required=False)
    reminder_hours = forms.CharField(
        label=_("Reminders (hours before)"),
        required=False,
        max_length=40,
        # Formatted when shown, in the language of the request.
        help_text=lazy(
            lambda: (
                gettext(
                    "Up to %(count)d, from 1 to %(max)d, separated by commas: 24, 2 sends one the "
                    "day before and one two hours before."
                )
                % {"count": MAX_REMINDERS, "max": MAX_REMINDER_HOURS}
            ),
            str,
        )(),
    )
    no_show_limit = forms.IntegerField(
        label=_("Block online booking after this many no-shows"),
        required=False,
        min_value=1,
        max_value=50,
        help_text=_("Empty: never block. The practice can still book such patients by phone."),
    )

    @staticmethod
    def initial_for(practitioner: Practitioner) -> dict[str, Any]:
        initial = {field.name: getattr(practitioner, field.name) for field in fields(BookingRules)}
        initial["reminder_hours"] = ", ".join(str(h) for h in practitioner.reminder_hours or [])
        return initial

    def clean_reminder_hours(self) -> list[int]:
        return parse_reminder_hours(self.cleaned_data["reminder_hours"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("reminders_enabled") and cleaned.get("reminder_hours") == []:
            self.add_error(
                "reminder_hours", _("Give at least one reminder time, or turn reminders off.")
            )
        return cleaned

    def rules(self) -> BookingRules:
        data = self.cleaned_data
        return BookingRules(**{**data, "reminder_hours": tuple(data["reminder_hours"])})


class MemberForm(SettingsForm):
    email = forms.EmailField(
        label=_("Email address of the secretary"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "An existing secretary account joins the practice; any other address receives an "
            "invitation to create one."
        ),
    )


class AccessForm(SettingsForm):
    level = forms.ChoiceField(label=_("Access"), choices=StaffAccess.Level.choices)
