from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.forms import NAME_MAX_LENGTH
from patients.models import Patient, Relative
from patients.selectors import relatives_of
from practitioners.models import Specialty
from practitioners.selectors import specialties


class SearchForm(forms.Form):
    """Public search. Every field optional; an unknown specialty or an overlong text is a form
    error shown next to its field, never a server error."""

    specialty = forms.ChoiceField(label=_("Specialty"), required=False)
    city = forms.CharField(
        label=_("City"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    q = forms.CharField(label=_("Practitioner's name"), required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Evaluated once: the home page lists them too.
        self.specialties: list[Specialty] = list(specialties())
        specialty = cast(forms.ChoiceField, self.fields["specialty"])
        specialty.choices = [("", _("Any specialty"))] + [
            (s.slug, s.name) for s in self.specialties
        ]


FOR_ME = "me"
NEW_RELATIVE = "new"


class BookingForm(forms.Form):
    """For whom the patient books: themselves, one of the relatives they manage, or a relative
    added here. Only the patient's own relatives are choices, so another's is a form error."""

    for_whom = forms.ChoiceField(label=_("For whom is this appointment?"), widget=forms.RadioSelect)
    first_name = forms.CharField(label=_("First name"), required=False, max_length=NAME_MAX_LENGTH)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=NAME_MAX_LENGTH)
    birth_date = forms.DateField(
        label=_("Birth date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Format: YYYY-MM-DD"),
    )
    NEW_RELATIVE_FIELDS = ("first_name", "last_name", "birth_date")

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"for_whom": FOR_ME})
        super().__init__(*args, **kwargs)
        self.relatives = {str(r.pk): r for r in relatives_of(patient=patient)}
        for_whom = cast(forms.ChoiceField, self.fields["for_whom"])
        for_whom.choices = [
            (FOR_ME, _("Me (%(name)s)") % {"name": patient.full_name}),
            *((pk, relative.full_name) for pk, relative in self.relatives.items()),
            (NEW_RELATIVE, _("A relative I add now")),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("for_whom") == NEW_RELATIVE:
            for name in self.NEW_RELATIVE_FIELDS:
                if not cleaned.get(name) and name not in self.errors:
                    self.add_error(name, _("Required to add a relative."))
        birth_date = cleaned.get("birth_date")
        if birth_date and (birth_date > timezone.localdate() or birth_date.year < 1900):
            self.add_error("birth_date", _("Enter a real birth date."))
        return cleaned

    @property
    def adds_relative(self) -> bool:
        return bool(self.cleaned_data["for_whom"] == NEW_RELATIVE)

    @property
    def relative(self) -> Relative | None:
        return self.relatives.get(self.cleaned_data["for_whom"])

    def new_relative_fields(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.NEW_RELATIVE_FIELDS}
