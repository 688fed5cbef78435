"""Appointments in the Django admin: read-only, and every read recorded (DESIGN invariant 2).

Platform staff reach appointment data only here, on the admin channel (booking.selectors lets an
admin see appointments on that channel only). The changelist records a "list" event for the rows
it shows, the detail page a "view", the CSV export an "export" of what it wrote: each in one
bulk insert, before the response leaves. Rows show ids, times and statuses, never names.
"""

import csv
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from audit.admin_mixins import AuditedAdminMixin, admin_actor
from audit.models import Action
from booking.models import Appointment
from booking.selectors import visible_appointments

DETAIL_FIELDS: list[str] = [
    "id",
    "practitioner_id",
    "patient_id",
    "relative_id",
    "reason_id",
    "start",
    "end",
    "status",
    "channel",
    "cancelled_by",
    "cancelled_at",
    "rescheduled_from_id",
    "created_at",
    "updated_at",
]


@admin.register(Appointment)
class AppointmentAdmin(AuditedAdminMixin):
    list_display = [
        "id",
        "start",
        "end",
        "status",
        "channel",
        "practitioner_id",
        "patient_id",
        "created_at",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["=id", "=patient__id", "=practitioner__id"]
    date_hierarchy = "start"
    ordering = ["-start"]
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over the whole table
    actions = ["export_csv"]
    fields = tuple(DETAIL_FIELDS)
    readonly_fields = tuple(DETAIL_FIELDS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Appointment]:
        return visible_appointments(admin_actor(request)).order_by("-start")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Export selected appointments (CSV)"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> HttpResponse:
        rows = list(queryset.order_by("start"))
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="appointments.csv"'
        writer = csv.writer(response)
        writer.writerow(["id", "start", "end", "status", "channel", "practitioner", "patient"])
        for row in rows:
            writer.writerow(
                [
                    row.pk,
                    row.start.isoformat(),
                    row.end.isoformat(),
                    row.status,
                    row.channel,
                    row.practitioner_id,
                    row.patient_id,
                ]
            )
        self.record(request, Action.EXPORT, rows)
        return response
