from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.two_factor import Outcome, Purpose, normalize_code, verify_code
from audit.actors import actor_for
from integrations.models import Integration
from integrations.scopes import SCOPES
from integrations.selectors import grantable_integrations
from practitioners.models import Practitioner

DEFAULT_GRANT_DAYS = 365


class IntegrationChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.vendor})" if obj.vendor else str(obj.name)


class GrantForm(forms.Form):
    """A practitioner's consent to one application, confirmed with a fresh code from their
    authenticator app: a stolen session alone cannot connect software to an agenda.

    The code is checked last, once everything else is valid, so a typo elsewhere does not spend
    it; it goes through accounts.two_factor.verify_code (single use, throttled, locked out after
    repeated failures, each refusal recorded in the audit log).
    """

    integration = IntegrationChoiceField(
        label=_("Application"),
        queryset=Integration.objects.none(),
        empty_label=_("Choose an application"),
    )
    scopes = forms.MultipleChoiceField(
        label=_("What it may do"),
        choices=list(SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Grant only what the software needs."),
    )
    until = forms.DateField(
        label=_("Until (included)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty to keep it until you revoke it."),
    )
    code = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )

    def __init__(
        self, *args: Any, request: HttpRequest, practitioner: Practitioner, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.practitioner = practitioner
        self.fields["integration"].queryset = grantable_integrations()  # type: ignore[attr-defined]
        self.fields["until"].initial = self.today() + timedelta(days=DEFAULT_GRANT_DAYS)

    def today(self) -> date:
        return timezone.localdate(timezone=self.practitioner.practice.tz)

    def clean_until(self) -> date | None:
        until: date | None = self.cleaned_data.get("until")
        if until is not None and until < self.today():
            raise forms.ValidationError(_("Choose today or a later date."))
        return until

    def clean_code(self) -> str:
        code = normalize_code(self.cleaned_data.get("code", ""))
        if not (code.isdigit() and len(code) == 6):
            raise forms.ValidationError(
                _("Enter the 6-digit code shown by your authenticator app.")
            )
        return code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        result = verify_code(
            actor=actor_for(self.request),
            user=self.request.user,  # type: ignore[arg-type]
            code=cleaned["code"],
            purpose=Purpose.REAUTH,
        )
        if result.locked:
            self.add_error("code", _("Too many wrong codes: try again in a few minutes."))
        elif result.outcome is Outcome.THROTTLED:
            self.add_error("code", _("Too many attempts in a row: wait a few seconds."))
        elif not result.verified:
            self.add_error("code", _("This code is not valid or was already used."))
        return cleaned

    def expires_at(self) -> datetime | None:
        """The end of the chosen day, on the practice's clock."""
        until: date | None = self.cleaned_data.get("until")
        if until is None:
            return None
        return datetime.combine(
            until + timedelta(days=1), time(0), tzinfo=self.practitioner.practice.tz
        )
