from collections.abc import Iterable, Sequence

from django.contrib import admin
from django.http import HttpRequest

from audit.admin_mixins import AuditedAdminMixin
from audit.services import AppointmentLike, AppointmentRef
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(AuditedAdminMixin):
    """The outbox, read-only: failed messages are visible here (filter by status). A row names an
    appointment (its id and when a message about it goes out), so reading rows is audited."""

    list_display = [
        "id",
        "kind",
        "channel",
        "recipient",
        "appointment_id",
        "status",
        "attempts",
        "scheduled_for",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["appointment"]
    readonly_fields = [f.name for f in Notification._meta.get_fields() if f.concrete]
    ordering = ["-id"]
    show_full_result_count = False
    audit_detail = "admin: notifications"

    def appointment_refs(self, rows: Sequence[Notification]) -> Iterable[AppointmentLike]:
        return [
            AppointmentRef(
                id=row.appointment_id,
                patient_id=row.appointment.patient_id,
                practitioner_id=row.appointment.practitioner_id,
            )
            for row in rows
            if row.appointment is not None
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
