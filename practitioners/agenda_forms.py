"""Forms of the agenda's actions. They parse and validate input only; the booking services and
practitioners.services decide what is allowed."""

from datetime import UTC, date, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts.crypto import normalize_phone
from patients.forms import NAME_MAX_LENGTH
from patients.models import Patient, Relative
from practitioners.agenda import FARTHEST_DAYS, STATUS_ACTIONS
from practitioners.models import Absence

PHONE_MIN_DIGITS = 8
FOR_PATIENT = ""


def parse_start(value: str) -> datetime | None:
    """An aware instant in UTC from a slot's ISO value; None for anything else."""
    try:
        start = parse_datetime(value)
    except (ValueError, OverflowError):
        return None
    if start is None or timezone.is_naive(start):
        return None
    return start.astimezone(UTC)


class SlotField(forms.CharField):
    """A free slot, posted as its ISO UTC instant. Not checked against the free slots here: a
    slot taken meanwhile must reach the service, which answers that it is taken."""

    default_error_messages = {"invalid": _("Choose one of the free times.")}

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        start = parse_start(text)
        if start is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return start


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name or phone number"),
        min_length=2,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
        help_text=_("Among the patients who already had an appointment with this practitioner."),
    )


class NewPatientForm(forms.Form):
    """A patient record without an account, for someone booking on the phone."""

    first_name = forms.CharField(label=_("First name"), max_length=NAME_MAX_LENGTH)
    last_name = forms.CharField(label=_("Last name"), max_length=NAME_MAX_LENGTH)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=30,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("Email (optional)"), required=False)
    birth_date = forms.DateField(
        label=_("Birth date (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Format: YYYY-MM-DD"),
    )

    def clean_phone(self) -> str:
        phone = str(self.cleaned_data["phone"]).strip()
        if sum(char.isdigit() for char in normalize_phone(phone)) < PHONE_MIN_DIGITS:
            raise forms.ValidationError(_("Enter a phone number the patient can be reached on."))
        return phone

    def clean_birth_date(self) -> date | None:
        birth_date: date | None = self.cleaned_data.get("birth_date")
        if birth_date and (birth_date > timezone.localdate() or birth_date.year < 1900):
            raise forms.ValidationError(_("Enter a real birth date."))
        return birth_date


class PhoneBookingForm(forms.Form):
    """The slot chosen, and for whom: the patient or a relative they brought before."""

    start = SlotField(label=_("Time"), error_messages={"required": _("Choose a free time.")})
    relative = forms.ChoiceField(label=_("For whom"), required=False)

    def __init__(
        self, *args: Any, patient: Patient | None, relatives: list[Relative], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.relatives = {str(relative.pk): relative for relative in relatives}
        name = patient.full_name if patient is not None else _("The new patient")
        field = cast(forms.ChoiceField, self.fields["relative"])
        field.choices = [(FOR_PATIENT, name)] + [
            (pk, relative.full_name) for pk, relative in self.relatives.items()
        ]

    @property
    def chosen_relative(self) -> Relative | None:
        return self.relatives.get(self.cleaned_data.get("relative") or FOR_PATIENT)


class MoveForm(forms.Form):
    start = SlotField(error_messages={"required": _("Choose one of the free times.")})


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the cancellation"),
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Sent to the patient with the cancellation."),
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=list(STATUS_ACTIONS.items()))


class BlockForm(forms.Form):
    """A time range to close in the agenda, in the practice's local time."""

    day = forms.DateField(
        label=_("From (day)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start_time = forms.TimeField(
        label=_("From (time)"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    end_day = forms.DateField(
        label=_("Until (day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Leave empty for the same day."),
    )
    end_time = forms.TimeField(
        label=_("Until (time)"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    label = forms.CharField(
        label=_("Label (optional)"),
        required=False,
        max_length=Absence._meta.get_field("label").max_length,
        help_text=_("Shown in the agenda, never to patients."),
    )

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The range as aware instants; a wall-clock time that does not exist (the spring DST
        gap) takes the offset in force before it."""
        data = self.cleaned_data
        start = datetime.combine(data["day"], cast(time, data["start_time"]), tzinfo=tz)
        end_day = data.get("end_day") or data["day"]
        end = datetime.combine(end_day, cast(time, data["end_time"]), tzinfo=tz)
        return start, end

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        today = timezone.localdate()
        for name in ("day", "end_day"):
            asked = cleaned.get(name)
            if asked and abs((asked - today).days) > FARTHEST_DAYS:
                self.add_error(name, _("Choose a date within three years of today."))
                cleaned[name] = None
        day, end_day = cleaned.get("day"), cleaned.get("end_day")
        start_time, end_time = cleaned.get("start_time"), cleaned.get("end_time")
        complete = day and start_time and end_time
        if complete and (end_day or day, end_time) <= (day, start_time):
            self.add_error("end_time", _("The end must come after the start."))
        return cleaned
