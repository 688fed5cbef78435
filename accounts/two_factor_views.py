"""Second-factor pages: the code prompt after the password, enrolment, backup codes, replacing
the authenticator and (patients only) turning two-step verification off.

See accounts.two_factor for the rules and accounts.middleware for who may reach what.
"""

import time
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.models import Device

from accounts.forms import CodeForm, ReauthForm, code_error
from accounts.models import User
from accounts.two_factor import (
    Purpose,
    TwoFactorRequired,
    authenticator_for,
    backup_codes_left,
    complete_enrolment,
    disable_two_factor,
    forget_missing_authenticator,
    has_authenticator,
    is_verified,
    manual_secret,
    pending_authenticator,
    qr_code_svg,
    regenerate_backup_codes,
    second_factor_url,
    start_enrolment,
    verify_code,
)
from accounts.views import safe_next
from audit.actors import actor_for
from audit.registry import audit_exempt

PENDING_DEVICE_KEY = "accounts.pending_authenticator"
REENROL_UNTIL_KEY = "accounts.reenrol_until"
REENROL_SECONDS = 600


def _next(request: HttpRequest) -> str:
    return safe_next(request, request.POST.get("next") or request.GET.get("next"))


def _default_destination(user: User) -> str:
    return "/agenda/" if user.is_practice_staff else resolve_url(settings.LOGIN_REDIRECT_URL)


def locked_response(request: HttpRequest, locked_until: datetime | None) -> HttpResponse:
    minutes = settings.OTP_LOCKOUT_SECONDS // 60
    if locked_until is not None:
        minutes = max(1, -(-int((locked_until - timezone.now()).total_seconds()) // 60))
    return render(request, "accounts/two_factor_locked.html", {"minutes": minutes}, status=429)


def mark_verified(request: HttpRequest, device: Device) -> None:
    """The session passed its second factor with `device`: it gets a new key, like at login."""
    otp_login(request, device)
    request.session.cycle_key()


@audit_exempt("account: second-factor code prompt")
@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user: User = request.user  # type: ignore[assignment]
    next_url = _next(request)
    if not user.requires_two_factor or is_verified(user):
        return HttpResponseRedirect(next_url or _default_destination(user))
    if not has_authenticator(user):
        if user.is_privileged:
            return HttpResponseRedirect(second_factor_url(user, next_url=next_url))
        forget_missing_authenticator(user=user)
        return HttpResponseRedirect(next_url or _default_destination(user))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = verify_code(
            actor=actor_for(request),
            user=user,
            code=form.cleaned_data["code"],
            purpose=Purpose.LOGIN,
        )
        if result.locked:
            return locked_response(request, result.locked_until)
        if result.verified and result.device is not None:
            mark_verified(request, result.device)
            return HttpResponseRedirect(next_url or _default_destination(user))
        form.add_error("code", code_error(result.outcome))
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": next_url})


@audit_exempt("account: authenticator enrolment")
@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user: User = request.user  # type: ignore[assignment]
    next_url = _next(request)
    if has_authenticator(user) and not _may_reenrol(request):
        # Only a verified session that re-authenticated may replace an authenticator; without
        # this, a stolen password would be enough to enrol the thief's phone.
        if not is_verified(user):
            return HttpResponseRedirect(second_factor_url(user, next_url=next_url))
        return redirect("accounts:security")
    device = pending_authenticator(user=user, device_id=request.session.get(PENDING_DEVICE_KEY))
    if device is None:
        device = start_enrolment(user=user)
        request.session[PENDING_DEVICE_KEY] = device.pk
    form = CodeForm(request.POST or None, digits_only=True)
    if request.method == "POST" and form.is_valid():
        result = verify_code(
            actor=actor_for(request),
            user=user,
            code=form.cleaned_data["code"],
            purpose=Purpose.SETUP,
            device=device,
        )
        if result.locked:
            return locked_response(request, result.locked_until)
        if result.verified:
            codes = complete_enrolment(user=user, device=device)
            mark_verified(request, device)
            request.session.pop(PENDING_DEVICE_KEY, None)
            request.session.pop(REENROL_UNTIL_KEY, None)
            return _show_backup_codes(request, codes, next_url or _default_destination(user))
        form.add_error("code", code_error(result.outcome))
    context = {
        "form": form,
        "next": next_url,
        "qr_code": qr_code_svg(device),
        "secret": manual_secret(device),
        "replacing": has_authenticator(user),
    }
    return render(request, "accounts/two_factor_setup.html", context)


def _may_reenrol(request: HttpRequest) -> bool:
    until = request.session.get(REENROL_UNTIL_KEY)
    return is_verified(request.user) and isinstance(until, int) and until > time.time()


def _show_backup_codes(request: HttpRequest, codes: list[str], next_url: str) -> HttpResponse:
    # Rendered in the response to the POST that created them and stored nowhere else in clear:
    # shown once. never_cache keeps them out of shared caches and the back-forward cache.
    return render(request, "accounts/backup_codes.html", {"codes": codes, "next": next_url})


@audit_exempt("account: backup codes")
@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not has_authenticator(user):
        return redirect("accounts:security")
    form = ReauthForm(request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            codes = regenerate_backup_codes(user=user)
            return _show_backup_codes(request, codes, resolve_url("accounts:security"))
    context = {"form": form, "left": backup_codes_left(user)}
    return render(request, "accounts/backup_codes_manage.html", context)


@audit_exempt("account: replacing the authenticator")
@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reset(request: HttpRequest) -> HttpResponse:
    """Replace the authenticator (a new phone): re-authenticate, then enrol anew; the old one
    keeps working until the new one is confirmed."""
    user: User = request.user  # type: ignore[assignment]
    if not has_authenticator(user):
        return redirect("accounts:two-factor-setup")
    form = ReauthForm(request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            request.session[REENROL_UNTIL_KEY] = int(time.time()) + REENROL_SECONDS
            request.session.pop(PENDING_DEVICE_KEY, None)
            return redirect("accounts:two-factor-setup")
    return render(request, "accounts/two_factor_reset.html", {"form": form})


@audit_exempt("account: turning two-step verification off")
@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def disable(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if user.is_privileged:
        raise PermissionDenied("two-step verification is mandatory for this account")
    if not user.two_factor_enabled and not has_authenticator(user):
        return redirect("accounts:security")
    form = ReauthForm(request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            try:
                disable_two_factor(user=user)
            except TwoFactorRequired as exc:
                raise PermissionDenied from exc
            messages.success(request, _("Two-step verification is off."))
            return redirect("accounts:security")
    return render(request, "accounts/two_factor_disable.html", {"form": form})


def authenticator_summary(user: User) -> dict[str, object]:
    device = authenticator_for(user)
    return {
        "authenticator": device,
        "backup_codes_left": backup_codes_left(user) if device else 0,
    }
