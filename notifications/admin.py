from django.contrib import admin

from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox, read-only: failed messages are visible here (filter by status)."""

    list_display = [
        "id",
        "kind",
        "channel",
        "recipient",
        "status",
        "attempts",
        "scheduled_for",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "kind", "channel"]
    readonly_fields = [f.name for f in Notification._meta.get_fields() if f.concrete]
    ordering = ["-id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
