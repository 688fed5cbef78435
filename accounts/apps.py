from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with the two-factor site as `admin.site`
    (INSTALLED_APPS names it instead of "django.contrib.admin")."""

    default = False  # not the config of the accounts app itself
    default_site = "accounts.admin_site.TwoFactorAdminSite"
