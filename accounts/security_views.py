"""The security page of an account: second factor, password, email address, sessions.

Every change here re-authenticates (accounts.forms.ReauthForm): the current password, plus a
code when the account has a second factor.
"""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import EmailChangeForm, PasswordChangeForm
from accounts.models import User
from accounts.selectors import active_sessions
from accounts.services import (
    EmailTaken,
    change_password,
    confirm_email_change,
    end_other_sessions,
    end_session,
    request_email_change,
)
from accounts.tokens import InvalidToken, read_email_change_token
from accounts.two_factor_views import authenticator_summary, locked_response
from audit.registry import audit_exempt


@audit_exempt("account: security settings and own sessions")
@never_cache
@login_required
@require_GET
def security(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context = {
        **authenticator_summary(user),
        "sessions": active_sessions(user=user, current_session_key=request.session.session_key),
    }
    return render(request, "accounts/security.html", context)


@audit_exempt("account: password change")
@sensitive_post_parameters("password", "code", "new_password1", "new_password2")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = PasswordChangeForm(request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            change_password(
                user=user,
                new_password=form.cleaned_data["new_password1"],
                keep_session_key=request.session.session_key,
            )
            # Keeps this session signed in (and gives it a new key).
            update_session_auth_hash(request, user)
            messages.success(
                request, _("Your password is changed. Your other sessions were logged out.")
            )
            return redirect("accounts:security")
    return render(request, "accounts/password_change.html", {"form": form})


@audit_exempt("account: email change request")
@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def email_change(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = EmailChangeForm(request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if form.locked:
            return locked_response(request, form.locked_until)
        if valid:
            request_email_change(user=user, new_email=form.cleaned_data["email"])
            return redirect("accounts:email-change-sent")
    return render(request, "accounts/email_change.html", {"form": form})


@audit_exempt("account: static confirmation page")
@login_required
@require_GET
def email_change_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/email_change_sent.html")


@audit_exempt("account: email change link")
@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST applies: a mail scanner opening the link changes nothing."""
    try:
        read_email_change_token(token)
        if request.method == "POST":
            confirm_email_change(token=token)
            messages.success(request, _("Your email address is changed."))
            return redirect("accounts:security" if request.user.is_authenticated else "home")
    except InvalidToken:
        return render(request, "accounts/email_change_failed.html", status=400)
    except EmailTaken:
        return render(request, "accounts/email_change_failed.html", {"taken": True}, status=409)
    return render(request, "accounts/email_change_confirm.html")


@audit_exempt("account: ending one of one's own sessions")
@login_required
@require_POST
def session_end(request: HttpRequest, handle: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if end_session(user=user, handle=handle, current_session_key=request.session.session_key):
        messages.success(request, _("The session was logged out."))
    else:
        messages.info(request, _("This session had already ended."))
    return redirect("accounts:security")


@audit_exempt("account: ending one's other sessions")
@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    end_other_sessions(user=user, keep_session_key=request.session.session_key)
    messages.success(request, _("Your other sessions were logged out."))
    return redirect("accounts:security")
