"""Auditing for Django admin pages that show appointment data (DESIGN invariant 2)."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from audit.actors import Actor, actor_for
from audit.models import Action, Channel
from audit.services import AppointmentLike, record_access


def admin_actor(request: HttpRequest) -> Actor:
    return actor_for(request, channel=Channel.ADMIN)


class AuditedAdminMixin(admin.ModelAdmin):
    """The changelist records a "list" of the rows it shows, the detail page a "view"; each in
    one bulk insert, before the response leaves. Subclasses say which appointment each row is
    about (`appointment_refs`)."""

    audit_detail = "admin"

    def appointment_refs(self, rows: Sequence[Any]) -> Iterable[AppointmentLike]:
        return rows

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if isinstance(response, TemplateResponse) and changelist is not None:
            self.record(request, Action.LIST, list(changelist.result_list))
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        original = getattr(response, "context_data", {}).get("original")
        if isinstance(response, TemplateResponse) and original is not None:
            self.record(request, Action.VIEW, [original])
        return response

    def record(self, request: HttpRequest, action: str, rows: Sequence[Any]) -> None:
        refs = list(self.appointment_refs(rows))
        if refs or action != Action.LIST:
            record_access(
                actor=admin_actor(request),
                action=action,
                appointments=refs,
                detail=self.audit_detail,
            )
