from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import Patient, Relative
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


class RelativeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Relative) -> str:
        return obj.full_name


class BookingForm(forms.Form):
    """For whom the patient books: themselves or one of the relatives they manage. The queryset
    is limited to the patient's own relatives, so another patient's relative is a form error."""

    relative = RelativeChoiceField(
        label=_("For whom?"),
        queryset=Relative.objects.none(),
        required=False,
        empty_label=_("For me"),
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relative"].queryset = patient.relatives.order_by("id")  # type: ignore[attr-defined]
