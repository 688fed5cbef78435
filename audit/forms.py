"""The filters of the audit review pages: bad input is a form error, never a 500."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.models import Action, Channel
from audit.selectors import Cursor, EventFilter
from audit.services import BIGINT_MAX

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DEFAULT_WINDOW = timedelta(hours=24)
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
DATETIME_INPUT_FORMATS = [DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]


def _id_field(label: "StrOrPromise") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        max_value=BIGINT_MAX,  # a larger id names nothing and the column could not compare it
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _time_field(label: "StrOrPromise", help_text: "StrOrPromise") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=False,
        help_text=help_text,
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )


class EventFilterForm(forms.Form):
    """Which access events to show or export. Every field is optional; the time range defaults
    to the last 24 hours and is half-open: from <= occurred_at < to."""

    actor = _id_field(_("Actor (user id)"))
    patient = _id_field(_("Patient id"))
    practitioner = _id_field(_("Practitioner id"))
    integration = _id_field(_("Integration id"))
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", _("Any action")), *Action.choices]
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("Any channel")), *Channel.choices]
    )
    date_from = _time_field(_("From"), _("Default: 24 hours ago."))
    date_to = _time_field(_("To"), _("Default: now."))
    cursor = forms.CharField(required=False, max_length=48, widget=forms.HiddenInput)

    @classmethod
    def from_query(cls, query: QueryDict, *, now: datetime) -> "EventFilterForm":
        """The form bound to the page's query string, with the default start filled in so the
        field shows it and the links to further pages keep the same range."""
        data = query.copy()
        if not data.get("date_from"):
            data["date_from"] = timezone.localtime(now - DEFAULT_WINDOW).strftime(DATETIME_LOCAL)
        return cls(data)

    def clean_cursor(self) -> Cursor | None:
        value = self.cleaned_data.get("cursor") or ""
        if not value:
            return None
        cursor = Cursor.parse(value)
        if cursor is None:
            raise forms.ValidationError(_("This page link is not valid."), code="cursor")
        return cursor

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start >= end:
            self.add_error("date_to", _("The end of the range must come after its start."))
        return data

    def event_filter(self, *, now: datetime) -> EventFilter:
        """The filter of a valid form; `now` closes a range left open."""
        data = self.cleaned_data
        return EventFilter(
            start=data.get("date_from") or now - DEFAULT_WINDOW,
            end=data.get("date_to") or now,
            actor_user_id=data.get("actor"),
            patient_id=data.get("patient"),
            practitioner_id=data.get("practitioner"),
            integration_id=data.get("integration"),
            action=data.get("action") or "",
            channel=data.get("channel") or "",
        )
