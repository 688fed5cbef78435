"""The breach report form of /audit/breach/: bad input is a form error, never a 500."""

from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import Integration

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
INPUT_FORMATS = [DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]


def _moment(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        input_formats=INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )


class BreachForm(forms.Form):
    integration = forms.ModelChoiceField(
        label=_("Integration"), queryset=Integration.objects.order_by("name")
    )
    since = _moment(_("From"))
    until = _moment(_("To (excluded)"))
    notify = forms.BooleanField(
        label=_("Queue the messages to the patients and practitioners concerned"), required=False
    )
    revoke = forms.BooleanField(
        label=_("Revoke the integration (final: its tokens and every grant)"), required=False
    )
    confirm = forms.BooleanField(
        label=_("I confirm: the messages go out and the revocation cannot be undone"),
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since: datetime | None = data.get("since")
        until: datetime | None = data.get("until")
        if since and until and since >= until:
            self.add_error("until", _("The end must come after the start."))
        if (data.get("notify") or data.get("revoke")) and not data.get("confirm"):
            self.add_error("confirm", _("Confirm before sending messages or revoking."))
        return data
