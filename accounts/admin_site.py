"""The Django admin, behind the second factor.

`accounts.apps.AdminConfig` makes this the default site, so every `admin.register` in the project
lands on it. django-otp's OTPAdminSite only lets in staff whose session passed a second factor;
signing in goes through the site's own login and second-factor pages instead of the admin's form.
"""

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

from accounts.two_factor import is_verified, second_factor_url


class TwoFactorAdminSite(OTPAdminSite):
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_url, reverse("accounts:login"))
        if user.requires_two_factor and not is_verified(user):  # type: ignore[union-attr]
            return HttpResponseRedirect(second_factor_url(user, next_url=next_url))  # type: ignore[arg-type]
        # Signed in with a second factor but not admin staff: going to a login page again
        # would only loop.
        raise PermissionDenied
