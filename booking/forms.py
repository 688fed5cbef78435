from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import Patient, Relative
from practitioners.selectors import specialties


class SearchForm(forms.Form):
    specialty = forms.ChoiceField(label=_("Specialty"), required=False)
    city = forms.CharField(label=_("City"), required=False, max_length=100)
    q = forms.CharField(label=_("Name"), required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = [("", _("Any specialty"))] + [
            (s.slug, s.name) for s in specialties()
        ]


class RelativeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Relative) -> str:
        return obj.full_name


class BookingForm(forms.Form):
    relative = RelativeChoiceField(
        label=_("For whom?"), queryset=Relative.objects.none(), required=False,
        empty_label=_("For me"),
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relative"].queryset = patient.relatives.all()  # type: ignore[attr-defined]
