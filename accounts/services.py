"""Account actions: sign up, verify, rate limits, password and email changes, ending sessions.
Emails go out after commit, never inside it."""

import logging
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare

from accounts import crypto
from accounts.models import Role, User, UserSession
from accounts.sessions import session_handle
from accounts.tokens import (
    InvalidToken,
    make_email_change_token,
    make_verification_token,
    read_email_change_token,
    read_verification_token,
)
from patients.models import Patient

log = logging.getLogger(__name__)


class RateLimited(Exception):
    """Too many attempts of one action from one client in the window."""


class EmailTaken(Exception):
    """Another account took the new address between the request and its confirmation."""


@dataclass(frozen=True)
class SignupData:
    email: str
    password: str
    first_name: str
    last_name: str
    birth_date: date | None = None
    phone: str = ""


def check_rate_limit(*, scope: str, client: str, limit: int, window_seconds: int) -> None:
    """Fixed-window counter in the cache; raises RateLimited past `limit` hits per window."""
    key = f"accounts:rate:{scope}:{client}"
    # add() only sets a missing key, so the window starts at the first hit and is not extended.
    if cache.add(key, 1, timeout=window_seconds):
        return
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window_seconds)
        return
    if hits > limit:
        raise RateLimited(scope)


def sign_up(*, data: SignupData, next_url: str = "", language: str = "") -> None:
    """Create an inactive patient account and send its verification link.

    Answers the same way whether or not the email is taken (no account enumeration): an existing
    account gets a warning (or, if never verified, a fresh verification link) instead.
    """
    language = language or settings.LANGUAGE_CODE
    with transaction.atomic():
        existing = User.objects.filter_by_email(data.email).first()
        if existing is None:
            try:
                with transaction.atomic():  # savepoint: the blind index is the real guard
                    user = _create_patient_account(data=data, language=language)
            except IntegrityError:
                existing = User.objects.filter_by_email(data.email).get()
            else:
                _after_commit_send_verification(user=user, next_url=next_url)
                return
        # Hash anyway so a taken address answers as slowly as a new one.
        make_password(data.password)
        if existing.is_active:
            _after_commit_send(user=existing, template="signup_attempt", context={})
        else:
            _after_commit_send_verification(user=existing, next_url=next_url)


def _create_patient_account(*, data: SignupData, language: str) -> User:
    user = User.objects.create_user(
        data.email, data.password, role=Role.PATIENT, is_active=False, language=language
    )
    Patient.objects.create(
        user=user,
        first_name=data.first_name,
        last_name=data.last_name,
        birth_date=data.birth_date,  # type: ignore[misc]  # stubs see the TextField base
        phone=data.phone,
        email=user.email,
    )
    return user


@transaction.atomic
def verify_email(*, token: str) -> tuple[User | None, str]:
    """Activate the account a verification link names.

    Returns (user, next_url); user is None when the account was already active (the link was
    used before), so a forwarded or replayed link never opens a session by itself.
    Raises InvalidToken for a forged, expired or orphaned link.
    """
    verification = read_verification_token(token)
    user = User.objects.select_for_update().filter(pk=verification.user_id).first()
    if user is None:
        raise InvalidToken
    if user.is_active:
        return None, verification.next_url
    # Only a sign-up that never completed is activated here: an account switched off since (an
    # erased patient, a member of staff an admin deactivated) stays off, however valid the
    # link still is.
    if user.last_login is not None or not user.has_usable_password() or _erased(user):
        raise InvalidToken
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user, verification.next_url


def _erased(user: User) -> bool:
    patient = getattr(user, "patient", None)
    return patient is not None and patient.erased_at is not None


def _after_commit_send_verification(*, user: User, next_url: str) -> None:
    token = make_verification_token(user_id=user.pk, next_url=next_url)
    link = settings.CRENEAU_BASE_URL.rstrip("/") + reverse("accounts:verify", args=[token])
    context = {"link": link, "days": settings.ACCOUNTS_VERIFICATION_DAYS}
    _after_commit_send(user=user, template="verify", context=context)


def _after_commit_send(*, user: User, template: str, context: dict[str, object]) -> None:
    _after_commit_send_to(to=user.email, language=user.language, template=template, context=context)


def _after_commit_send_to(
    *, to: str, language: str, template: str, context: dict[str, object]
) -> None:
    login_url = _absolute(reverse("accounts:login"))
    reset_url = _absolute(reverse("accounts:password_reset"))
    full_context = {"login_url": login_url, "reset_url": reset_url, **context}
    transaction.on_commit(
        lambda: send_account_email(
            to=to, template=template, context=full_context, language=language
        )
    )


def _absolute(path: str) -> str:
    return settings.CRENEAU_BASE_URL.rstrip("/") + path


def send_account_email(
    *, to: str, template: str, context: dict[str, object], language: str
) -> None:
    with translation.override(language):
        subject = render_to_string(f"accounts/email/{template}_subject.txt", context)
        body = render_to_string(f"accounts/email/{template}_body.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [to])
    except OSError:
        # The account is committed; signing up again resends the link. Never log the address.
        log.exception("account email %s could not be sent", template)


# --- Password and email changes (the views re-authenticate first) -------------------------


@transaction.atomic
def change_password(*, user: User, new_password: str, keep_session_key: str | None) -> None:
    """Set a new password and end every other session of the account (Django would refuse them
    anyway, their auth hash no longer matches; deleting them keeps the session list true)."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    end_other_sessions(user=user, keep_session_key=keep_session_key)


def request_email_change(*, user: User, new_email: str) -> None:
    """Send a confirmation link to `new_email`; the address changes only when it is opened.

    The requester gets the same answer whether or not another account uses the address: that
    address receives a notice instead of a link.
    """
    new_email = crypto.normalize_email(new_email)
    with transaction.atomic():
        if User.objects.filter_by_email(new_email).exclude(pk=user.pk).exists():
            _after_commit_send_to(
                to=new_email, language=user.language, template="email_change_taken", context={}
            )
            return
        token = make_email_change_token(
            user_id=user.pk, new_email=new_email, from_index=user.email_index or ""
        )
        context = {
            "link": _absolute(reverse("accounts:email-change-confirm", args=[token])),
            "hours": settings.ACCOUNTS_EMAIL_CHANGE_HOURS,
        }
        _after_commit_send_to(
            to=new_email, language=user.language, template="email_change", context=context
        )


@transaction.atomic
def confirm_email_change(*, token: str) -> User:
    """Apply the change a confirmation link names; the old address is told afterwards.

    Raises InvalidToken for a forged, expired or superseded link, EmailTaken when another
    account took the address meanwhile. A link opened twice changes nothing the second time.
    """
    change = read_email_change_token(token)
    user = User.objects.select_for_update().filter(pk=change.user_id, is_active=True).first()
    if user is None:
        raise InvalidToken
    if user.email_index in crypto.blind_indexes(change.new_email, kind="email"):
        return user
    if not user.email_index or not constant_time_compare(user.email_index, change.from_index):
        raise InvalidToken
    old_email = user.email
    user.email = change.new_email
    try:
        with transaction.atomic():  # savepoint: the blind index is the real uniqueness guard
            user.save(update_fields=["email", "email_index"])
    except IntegrityError as exc:
        raise EmailTaken from exc
    # The patient profile's contact address follows when it was the account's address.
    patient = Patient.objects.filter(user=user).first()
    if patient is not None and patient.email_index == change.from_index:
        patient.email = change.new_email
        patient.save(update_fields=["email", "email_index"])
    _after_commit_send_to(
        to=old_email, language=user.language, template="email_changed", context={}
    )
    return user


# --- Sessions -------------------------------------------------------------------------------


def end_session(*, user: User, handle: str, current_session_key: str | None) -> bool:
    """End the session of `user` that `handle` names (never the current one: that is logging
    out). Returns whether one was ended."""
    sessions = UserSession.objects.filter(user=user, expire_date__gt=timezone.now())
    for session_key in sessions.values_list("session_key", flat=True):
        if session_key != current_session_key and constant_time_compare(
            session_handle(session_key), handle
        ):
            UserSession.objects.filter(session_key=session_key, user=user).delete()
            return True
    return False


def end_other_sessions(*, user: User, keep_session_key: str | None) -> int:
    ended, _ = UserSession.objects.filter(user=user).exclude(session_key=keep_session_key).delete()
    return ended


def end_all_sessions(*, user: User) -> int:
    ended, _ = UserSession.objects.filter(user=user).delete()
    return ended
