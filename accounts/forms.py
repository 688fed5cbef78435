from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.db import transaction
from django.http import HttpRequest
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django_otp import user_has_device

from accounts import crypto
from accounts.models import User
from accounts.two_factor import Outcome, Purpose, verify_code
from audit.actors import actor_for


class AccessibleErrorsMixin:
    """Marks invalid inputs with aria-invalid and links them to their error text, which the
    `accounts/_field.html` include renders under the id `<field id>_errors`."""

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        form: forms.BaseForm = self  # type: ignore[assignment]
        for name in form.errors:
            if name not in form.fields:
                continue
            bound = form[name]
            described_by = [f"{bound.auto_id}_errors"]
            if bound.help_text:
                described_by.append(f"{bound.auto_id}_helptext")
            form.fields[name].widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": " ".join(described_by)}
            )


class LoginForm(AccessibleErrorsMixin, AuthenticationForm):
    pass


class SignupForm(AccessibleErrorsMixin, forms.Form):
    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=lazy(password_validation.password_validators_help_text_html, str)(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    first_name = forms.CharField(
        label=_("First name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "given-name"}),
    )
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "family-name"}),
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
    )
    phone = forms.CharField(
        label=_("Mobile phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )

    def clean_email(self) -> str:
        return crypto.normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords do not match."))
        elif password1:
            # Validated against an unsaved user so the similarity check sees the email.
            candidate = User(email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class EmailLookupPasswordResetForm(AccessibleErrorsMixin, PasswordResetForm):
    """Django's form matches `email__iexact`, which an encrypted column cannot answer: look the
    address up by its blind index instead. Mails leave after commit."""

    def get_users(self, email: str) -> Iterator[Any]:
        users = User.objects.filter_by_email(email).filter(is_active=True)
        return (user for user in users if user.has_usable_password())

    def send_mail(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(
            lambda: super(EmailLookupPasswordResetForm, self).send_mail(*args, **kwargs)
        )


class AccessibleSetPasswordForm(AccessibleErrorsMixin, SetPasswordForm):
    pass


# --- Second factor and re-authentication ----------------------------------------------------


class CodeForm(AccessibleErrorsMixin, forms.Form):
    """One code: from the authenticator app (six digits) or, where accepted, a backup code."""

    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, digits_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if digits_only:
            self.fields["code"].widget.attrs.update(inputmode="numeric", pattern=r"[0-9 ]*")


class ReauthForm(AccessibleErrorsMixin, forms.Form):
    """Proves, before a sensitive change, that the person at the keyboard is the account holder:
    the current password, plus a second-factor code when the account has one.

    The password goes through `authenticate()` so the login lockout (django-axes) counts wrong
    ones; the code goes through `accounts.two_factor.verify_code` (throttled, audited, locked
    out). `locked` tells the view to answer with the lockout page instead of the form.
    """

    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        label=_("Code from your authenticator app, or a backup code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User = request.user  # type: ignore[assignment]
        self.locked_until: datetime | None = None
        self.needs_code = user_has_device(self.user)
        if not self.needs_code:
            del self.fields["code"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password is None:
            return cleaned
        if not self._password_matches(password):
            self.add_error("password", _("Your password is not correct."))
            return cleaned
        code = cleaned.get("code")
        if self.needs_code and code:
            result = verify_code(
                actor=actor_for(self.request),
                user=self.user,
                code=code,
                purpose=Purpose.REAUTH,
            )
            self.locked_until = result.locked_until
            if not result.verified:
                self.add_error("code", code_error(result.outcome))
        return cleaned

    @property
    def locked(self) -> bool:
        return self.locked_until is not None

    def _password_matches(self, password: str) -> bool:
        authenticated = authenticate(self.request, username=self.user.email, password=password)
        return authenticated is not None and authenticated.pk == self.user.pk


def code_error(outcome: Outcome) -> str:
    if outcome is Outcome.THROTTLED:
        return str(_("Too many attempts in a row: wait a few seconds, then try again."))
    return str(
        _(
            "This code is not valid or was already used. Enter the current code from your "
            "app, or a backup code."
        )
    )


class PasswordChangeForm(ReauthForm):
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=lazy(password_validation.password_validators_help_text_html, str)(),
    )
    new_password2 = forms.CharField(
        label=_("New password (again)"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        # The new password is checked first: a typo there must not spend a one-time code.
        new1, new2 = self.cleaned_data.get("new_password1"), self.cleaned_data.get("new_password2")
        if new1 and new2 and new1 != new2:
            self.add_error("new_password2", _("The two passwords do not match."))
        elif new1:
            try:
                password_validation.validate_password(new1, self.user)
            except forms.ValidationError as error:
                self.add_error("new_password1", error)
        if self.errors:
            return self.cleaned_data
        return super().clean()


class EmailChangeForm(ReauthForm):
    email = forms.EmailField(
        label=_("New email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    field_order = ["email", "password", "code"]

    def clean_email(self) -> str:
        email = crypto.normalize_email(self.cleaned_data["email"])
        if email == crypto.normalize_email(self.user.email):
            raise forms.ValidationError(_("This is already your email address."))
        return email

    def clean(self) -> dict[str, Any]:
        if self.errors:  # a bad address must not spend a one-time code
            return self.cleaned_data
        return super().clean()
