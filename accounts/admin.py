from django.contrib import admin

from accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    # The email is encrypted and never listed: admins find accounts by id and role.
    list_display = ["id", "role", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = ["role", "is_active", "is_staff"]
    fields = [
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "date_joined",
        "last_login",
    ]
    readonly_fields = ["date_joined", "last_login"]
