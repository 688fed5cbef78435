"""Who may open the audit review pages (/audit/): admins, in a session that passed the second
factor.

The two-factor middleware already sends an unverified privileged session to the code prompt;
`admin_audit_view` checks again so a view never depends on the middleware's configuration. Anyone
else who is logged in gets a 404, as for any object they may not see, and the refusal is
recorded.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache

from accounts.models import Role
from audit.actors import Actor, actor_for
from audit.models import Channel
from audit.services import record_denial

View = Callable[..., HttpResponseBase]


def review_actor(request: HttpRequest) -> Actor:
    """The actor of an audit page: the admin, on the ADMIN channel."""
    return actor_for(request, channel=Channel.ADMIN)


def _is_verified(user: Any) -> bool:
    # django-otp's OTPMiddleware gives request.user `is_verified`; a user that did not go
    # through it is not verified.
    is_verified = getattr(user, "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def _second_factor_url(next_url: str) -> str:
    try:
        url = reverse("accounts:two-factor-verify")
    except NoReverseMatch:  # without the second-factor pages, the login page asks again
        url = reverse("accounts:login")
    return f"{url}?{urlencode({'next': next_url})}"


def admin_audit_view(view: View) -> View:
    @wraps(view)
    @never_cache  # what an admin saw of the log stays out of shared and browser caches
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(user, "role", None) != Role.ADMIN:
            record_denial(
                actor=review_actor(request), appointment_id=None, detail="audit log: not an admin"
            )
            raise Http404
        if not _is_verified(user):
            return redirect(_second_factor_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
