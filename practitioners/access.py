"""Who may open the agenda pages: practice staff, logged in with a second factor.

Every view under /agenda/ is wrapped by `agenda_view`; the two-factor middleware enforces the
same rule for every protected URL, so a page that forgot the decorator is still guarded (and
tests/accounts walk the URL patterns to prove both).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import STAFF_ROLES
from accounts.two_factor import code_prompt_url, is_verified
from booking.errors import NotAllowed

View = Callable[..., HttpResponse]


def agenda_view(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(user, "role", None) not in STAFF_ROLES:
            raise NotAllowed("the agenda is for practice staff")
        if not is_verified(user):
            return redirect(code_prompt_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
