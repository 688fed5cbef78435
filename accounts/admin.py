from django.contrib import admin
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User, UserSession


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    # The email is encrypted and never listed: admins find accounts by id and role.
    list_display = [
        "id",
        "role",
        "is_active",
        "is_staff",
        "two_factor_enabled",
        "date_joined",
        "last_login",
    ]
    list_filter = ["role", "is_active", "is_staff", "two_factor_enabled"]
    fields = [
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "two_factor_enabled",
        "groups",
        "date_joined",
        "last_login",
    ]
    # Set by enrolment, cleared by turning it off: deleting the devices below is the admin's way.
    readonly_fields = ["date_joined", "last_login", "two_factor_enabled"]


# django-otp's own device admins search users by email, which is encrypted (the lookup would
# fail), and can show secrets: these list devices by user id and never show a key or a code.
# Deleting an account's devices is how support resets a lost phone: the account enrols again at
# its next login (staff) or logs in with the password alone (patients).
for device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)


@admin.register(TOTPDevice)
class AuthenticatorAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StaticDevice)
class BackupCodesAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "name", "confirmed", "created_at", "last_used_at"]
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    """Sessions by user id; deleting one logs it out. The key, data and client are not shown."""

    list_display = ["user_id", "created_at", "last_activity", "expire_date"]
    fields = ("user", "created_at", "last_activity", "expire_date")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
