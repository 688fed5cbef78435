"""Session and second-factor enforcement, for every request.

Design: Django's `login()` happens at the password step, so the session is authenticated but
not yet *verified*; django-otp's OTPMiddleware marks it verified once a code was accepted (the
device id in the session). `TwoFactorMiddleware`, right after OTPMiddleware, is the single gate:
a session whose user must use a second factor (`User.requires_two_factor`: privileged accounts
always, patients who opted in) and has not passed it reaches only the URL names in
`OPEN_VIEW_NAMES` (the second-factor pages, logout, the public pages) and static files.

- Everything else on the web (/agenda/, /audit/, /me/, the admin, the security pages, any page
  added later) redirects to the code prompt, or to enrolment when a privileged account has no
  authenticator yet, with `next` set to the page asked for.
- Anything under /api/ answers 403 `{"detail": ..., "code": "otp_required"}`.

The gate is deny-by-default, so a new page cannot forget it; tests/security walks the URL
patterns to prove it. Views keep their own checks (the agenda's `agenda_view`, the OTP admin
site, `accounts.api_auth` for DRF) as a second line, not as the rule. The decision costs no
query: the role and the opt-in flag are on the user row that authentication loads anyway.

`SessionMiddleware` replaces Django's: it hands the client's IP and user agent to the session
engine (`accounts.sessions`) and, for an authenticated user, applies the idle timeout of their
role and keeps an active session alive.
"""

from collections.abc import Callable

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from accounts.sessions import idle_timeout_for
from accounts.two_factor import is_verified, second_factor_url

# Reachable by a session that still owes its second factor.
OPEN_VIEW_NAMES = frozenset(
    {
        # Public pages
        "home",
        "search",
        "practitioner",
        "set_language",
        "healthz",
        # Signing in and out, and account recovery: none of them shows or changes anything
        # of an authenticated account.
        "accounts:login",
        "accounts:logout",
        "accounts:signup",
        "accounts:signup-sent",
        "accounts:verify",
        "accounts:password_reset",
        "accounts:password_reset_done",
        "accounts:password_reset_confirm",
        "accounts:password_reset_complete",
        "accounts:email-change-confirm",
        # The second factor itself
        "accounts:two-factor-verify",
        "accounts:two-factor-setup",
    }
)
API_PREFIX = "/api/"


def _static_prefix() -> str:
    return "/" + settings.STATIC_URL.lstrip("/")


def is_open(request: HttpRequest) -> bool:
    if request.path_info.startswith(_static_prefix()):
        return True
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.view_name in OPEN_VIEW_NAMES


def otp_required_response() -> JsonResponse:
    return JsonResponse(
        {
            "detail": _("Two-step verification required: confirm this session with a code."),
            "code": "otp_required",
        },
        status=403,
    )


class TwoFactorMiddleware:
    """Place after django_otp.middleware.OTPMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and user.requires_two_factor  # type: ignore[union-attr]
            and not is_verified(user)
            and not is_open(request)
        ):
            if request.path_info.startswith(API_PREFIX):
                return otp_required_response()
            next_url = request.get_full_path() if request.method == "GET" else ""
            return HttpResponseRedirect(second_factor_url(user, next_url=next_url))  # type: ignore[arg-type]
        return self.get_response(request)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware, for the `accounts.sessions` engine (see its docstring)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        bind_client = getattr(request.session, "bind_client", None)
        if bind_client is not None:
            bind_client(
                ip=get_client_ip_address(request),
                user_agent=request.headers.get("User-Agent", ""),
            )

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        keep_alive = getattr(session, "keep_alive", None)
        # Only a session this request already used: touching it here would load it (and the
        # user) for responses that never needed either.
        if keep_alive is not None and session is not None and session.accessed:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                keep_alive(idle_timeout=idle_timeout_for(user))
        return super().process_response(request, response)
