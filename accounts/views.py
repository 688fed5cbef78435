from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.forms import (
    AccessibleSetPasswordForm,
    EmailLookupPasswordResetForm,
    LoginForm,
    SignupForm,
)
from accounts.services import (
    RateLimited,
    SignupData,
    check_rate_limit,
    end_all_sessions,
    sign_up,
    verify_email,
)
from accounts.tokens import InvalidToken
from accounts.two_factor import second_factor_url
from audit.registry import audit_exempt

RATE_WINDOW_SECONDS = 3600


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """`candidate` if it points back to this site, else ""."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def rate_limited_response(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/rate_limited.html", status=429)


def enforce_rate_limit(request: HttpRequest, *, scope: str) -> None:
    client = get_client_ip_address(request) or "unknown"
    check_rate_limit(
        scope=scope,
        client=client,
        limit=settings.ACCOUNTS_RATE_LIMIT_PER_HOUR,
        window_seconds=RATE_WINDOW_SECONDS,
    )


@audit_exempt("account: password login")
class LoginView(auth_views.LoginView):
    """The password step. Django's login() gives the session a new key; an account that needs a
    second factor then goes to the code prompt (or to enrolment), keeping `next`."""

    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        # A password alone never carries over a second factor passed earlier in this session.
        self.request.session.pop(DEVICE_ID_SESSION_KEY, None)
        response = super().form_valid(form)
        user = form.get_user()
        if user.requires_two_factor:
            return HttpResponseRedirect(second_factor_url(user, next_url=self.get_redirect_url()))
        return response


@audit_exempt("account: sign-up")
@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        try:
            enforce_rate_limit(request, scope="signup")
        except RateLimited:
            return rate_limited_response(request)
        if form.is_valid():
            data = SignupData(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                birth_date=form.cleaned_data["birth_date"],
                phone=form.cleaned_data["phone"],
            )
            sign_up(data=data, next_url=next_url, language=request.LANGUAGE_CODE)
            return redirect("accounts:signup-sent")
    return render(request, "accounts/signup.html", {"form": form, "next": next_url})


@audit_exempt("account: static confirmation page")
@require_GET
def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_sent.html")


@audit_exempt("account: email verification link")
@never_cache
@require_GET
def verify(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user, next_url = verify_email(token=token)
    except InvalidToken:
        return render(request, "accounts/verify_failed.html", status=400)
    next_url = safe_next(request, next_url)
    if user is None:
        messages.info(request, _("Your email address is already confirmed. Please log in."))
        login_url = reverse("accounts:login")
        if next_url:
            login_url += "?" + urlencode({"next": next_url})
        return HttpResponseRedirect(login_url)
    login(request, user, backend="accounts.backends.EmailBackend")
    messages.success(request, _("Your email address is confirmed. Welcome to Creneau!"))
    return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))


@audit_exempt("account: password reset request")
class PasswordResetView(auth_views.PasswordResetView):
    form_class = EmailLookupPasswordResetForm
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset_body.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            enforce_rate_limit(request, scope="password-reset")
        except RateLimited:
            return rate_limited_response(request)
        return super().post(request, *args, **kwargs)


@audit_exempt("account: new password from a reset link")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """A reset proves access to the mailbox, not to the second factor: it never logs in
    (post_reset_login stays off), and it ends every session of the account."""

    form_class = AccessibleSetPasswordForm
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
    post_reset_login = False

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        end_all_sessions(user=form.user)
        return response
