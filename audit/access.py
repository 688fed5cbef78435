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

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache

from accounts.models import Role
from accounts.two_factor import code_prompt_url, is_verified
from audit.actors import Actor, actor_for
from audit.models import Channel
from audit.services import record_denial

View = Callable[..., HttpResponseBase]


def review_actor(request: HttpRequest) -> Actor:
    """The actor of an audit page: the admin, on the ADMIN channel."""
    return actor_for(request, channel=Channel.ADMIN)


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
        if not is_verified(user):
            return redirect(code_prompt_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
