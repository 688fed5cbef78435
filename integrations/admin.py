"""Integrations in the admin: review, tune quotas, suspend / reinstate / revoke.

Integrations are registered with `manage.py create_integration` (the client secret is shown once,
on the operator's terminal), so there is no "add" here; grants are the practitioners' consent,
given on their own page, so the admin may only withdraw them. Status changes go through
integrations.services and are allowed to platform admins only; reinstating is the only way back
from a suspension. Nothing here shows appointment data (tests/audit/test_coverage.py).
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Role
from integrations import services
from integrations.models import Grant, Integration
from integrations.quotas import current_usage

STATUS_FIELDS = ("status", "status_reason", "status_changed_at", "status_changed_by")


def is_platform_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and (user.is_superuser or getattr(user, "role", "") == Role.ADMIN))


class GrantInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Grant
    fields = ("practitioner", "scopes", "granted_at", "expires_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return super().get_queryset(request).select_related("practitioner")


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "vendor",
        "status",
        "live_grants",
        "requests_per_minute",
        "patients_per_hour",
        "last_used_at",
        "status_changed_at",
    )
    list_filter = ("status",)
    search_fields = ("name", "vendor")
    fields = (
        "name",
        "vendor",
        "contact_email",
        "client_id",
        "requests_per_minute",
        "patients_per_hour",
        "usage_now",
        *STATUS_FIELDS,
        "created_at",
        "last_used_at",
    )
    readonly_fields = ("client_id", "usage_now", *STATUS_FIELDS, "created_at", "last_used_at")
    inlines = (GrantInline,)
    actions = ("suspend", "reinstate", "revoke")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Integration]:
        live = Q(grants__revoked_at__isnull=True) & (
            Q(grants__expires_at__isnull=True) | Q(grants__expires_at__gt=timezone.now())
        )
        return (
            super()
            .get_queryset(request)
            .select_related("application", "status_changed_by")
            .annotate(live_grant_count=Count("grants", filter=live))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_status_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request)

    @admin.display(description=_("live grants"), ordering="live_grant_count")
    def live_grants(self, obj: Integration) -> int:
        return int(getattr(obj, "live_grant_count", 0))

    @admin.display(description=_("client ID"))
    def client_id(self, obj: Integration) -> str:
        return obj.application.client_id

    @admin.display(description=_("usage now"))
    def usage_now(self, obj: Integration) -> str:
        usage = current_usage(obj)
        return (
            _("%(requests)s requests this minute, %(patients)s distinct patients this hour") % usage
        )

    @admin.action(description=_("Suspend (revokes its tokens)"), permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        reason = f"suspended by admin #{request.user.pk}"
        changed = sum(
            services.suspend_integration(integration_id=pk, reason=reason, by=request.user)
            for pk in queryset.values_list("pk", flat=True)
        )
        self._report(request, changed, _("suspended"))

    @admin.action(description=_("Reinstate suspended integrations"), permissions=["status"])
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        reason = f"reinstated by admin #{request.user.pk}"
        changed = sum(
            services.reinstate_integration(integration_id=pk, by=request.user, reason=reason)
            for pk in queryset.values_list("pk", flat=True)
        )
        self._report(request, changed, _("reinstated"))

    @admin.action(description=_("Revoke for good (tokens and grants)"), permissions=["status"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        reason = f"revoked by admin #{request.user.pk}"
        changed = sum(
            services.revoke_integration(integration_id=pk, by=request.user, reason=reason)
            for pk in queryset.values_list("pk", flat=True)
        )
        self._report(request, changed, _("revoked"))

    def _report(self, request: HttpRequest, changed: int, what: Any) -> None:
        message = ngettext(
            "%(count)d integration %(what)s.", "%(count)d integrations %(what)s.", changed
        ) % {"count": changed, "what": what}
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "id",
        "integration",
        "practitioner",
        "scope_list",
        "granted_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("integration",)
    list_select_related = ("integration", "practitioner")
    fields = (
        "integration",
        "practitioner",
        "scopes",
        "granted_by",
        "granted_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields
    actions = ("withdraw",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_status_permission(self, request: HttpRequest) -> bool:
        return is_platform_admin(request)

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: Grant) -> str:
        return " ".join(obj.scopes)

    @admin.action(description=_("Withdraw selected grants"), permissions=["status"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        count = services.withdraw_grants(
            grant_ids=list(queryset.values_list("pk", flat=True)), by=request.user
        )
        self.message_user(
            request,
            ngettext("%(count)d grant withdrawn.", "%(count)d grants withdrawn.", count)
            % {"count": count},
        )
