from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.models import Relative

NAME_MAX_LENGTH = 100


class RelativeForm(forms.Form):
    first_name = forms.CharField(
        label=_("First name"),
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Format: YYYY-MM-DD"),
    )
    relationship = forms.ChoiceField(
        label=_("Relationship"),
        choices=Relative.Relationship.choices,
        initial=Relative.Relationship.CHILD,
    )

    def clean_birth_date(self) -> object:
        birth_date = self.cleaned_data["birth_date"]
        if birth_date > timezone.localdate() or birth_date.year < 1900:
            raise forms.ValidationError(_("Enter a real birth date."))
        return birth_date
