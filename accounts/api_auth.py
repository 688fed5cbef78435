"""DRF authentication: a session counts only once its second factor is passed, when the user
must use one.

`accounts.middleware.TwoFactorMiddleware` already answers 403 `otp_required` for /api/; this
class holds the same rule inside DRF, for an API mounted elsewhere or a view reached without the
middleware. DRF's `force_authenticate` (tests) skips authentication classes altogether, so it
never reaches this check, and the check never assumes OTPMiddleware decorated the user.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from accounts.two_factor import is_verified


class OTPRequired(exceptions.PermissionDenied):
    default_detail = _("Two-step verification required: confirm this session with a code.")
    default_code = "otp_required"


class TwoFactorSessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if getattr(user, "requires_two_factor", False) and not is_verified(user):
            raise OTPRequired()
        return result


class TwoFactorSessionScheme(SessionScheme):
    """The OpenAPI description (drf-spectacular): the session cookie, as for DRF's class."""

    target_class = "accounts.api_auth.TwoFactorSessionAuthentication"
