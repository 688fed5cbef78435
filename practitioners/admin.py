from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from practitioners.models import (
    Absence,
    Practice,
    PracticeMember,
    Practitioner,
    Specialty,
    StaffAccess,
    StaffAccessChange,
    VisitReason,
    WeeklyHours,
)
from practitioners.services import record_staff_access_change


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Practice)
class PracticeAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "postcode", "timezone"]
    search_fields = ["name", "city", "postcode"]


class VisitReasonInline(admin.TabularInline):
    model = VisitReason
    extra = 0


class WeeklyHoursInline(admin.TabularInline):
    model = WeeklyHours
    extra = 0


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "specialty", "practice", "online_booking_enabled"]
    list_filter = ["specialty", "online_booking_enabled", "accepts_new_patients"]
    list_select_related = ["specialty", "practice"]
    search_fields = ["last_name", "first_name", "rpps", "slug"]
    raw_id_fields = ["user", "practice"]
    inlines = [VisitReasonInline, WeeklyHoursInline]


@admin.register(Absence)
class AbsenceAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "start", "end", "label"]
    raw_id_fields = ["practitioner"]


@admin.register(StaffAccess)
class StaffAccessAdmin(admin.ModelAdmin):
    """Changes made here are kept in StaffAccessChange, like those of the team page."""

    list_display = ["practitioner", "user", "level", "granted_at"]
    list_select_related = ["practitioner", "user"]
    raw_id_fields = ["practitioner", "user"]

    def _record(self, request: HttpRequest, access: StaffAccess, action: str) -> None:
        record_staff_access_change(
            practice_id=access.practitioner.practice_id,
            practitioner_id=access.practitioner_id,
            member=access.user,
            changed_by=request.user,  # type: ignore[arg-type]
            action=action,
            level=access.level,
        )

    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: StaffAccess, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        action = StaffAccessChange.Action.CHANGED if change else StaffAccessChange.Action.GRANTED
        self._record(request, obj, action)

    @transaction.atomic
    def delete_model(self, request: HttpRequest, obj: StaffAccess) -> None:
        super().delete_model(request, obj)
        self._record(request, obj, StaffAccessChange.Action.WITHDRAWN)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StaffAccess]) -> None:
        withdrawn = list(queryset.select_related("practitioner", "user"))
        super().delete_queryset(request, queryset)
        for access in withdrawn:
            self._record(request, access, StaffAccessChange.Action.WITHDRAWN)


@admin.register(PracticeMember)
class PracticeMemberAdmin(admin.ModelAdmin):
    list_display = ["practice", "user", "joined_at"]
    list_select_related = ["practice", "user"]
    raw_id_fields = ["practice", "user"]


@admin.register(StaffAccessChange)
class StaffAccessChangeAdmin(admin.ModelAdmin):
    """Read-only history: who gave, changed or withdrew access, and when."""

    list_display = ["at", "action", "level", "practice", "practitioner", "member", "changed_by"]
    list_filter = ["action", "level"]
    list_select_related = ["practice", "practitioner", "member", "changed_by"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
