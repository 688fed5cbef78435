from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.db import transaction
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from accounts import crypto
from accounts.models import User


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
