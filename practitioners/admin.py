from django.contrib import admin

from practitioners.models import (
    Absence,
    Practice,
    Practitioner,
    Specialty,
    StaffAccess,
    VisitReason,
    WeeklyHours,
)


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
    list_display = ["practitioner", "user", "level", "granted_at"]
    raw_id_fields = ["practitioner", "user"]
