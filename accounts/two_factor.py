"""Second factor (django-otp): enrolment, verification, backup codes, lockout.

A user's second factor is one confirmed `TOTPDevice` (an authenticator app) plus one
`StaticDevice` holding single-use backup codes. Practitioners, secretaries, admins and Django
staff must have it (`User.is_privileged`); patients may opt in (`User.two_factor_enabled`).

Every code goes through `verify_code`, which, in one transaction with the devices locked:
- refuses everything while the account's second factor is locked (`SecondFactorLock`: after
  OTP_LOCKOUT_FAILURES refused codes in a row, for OTP_LOCKOUT_SECONDS);
- honours django-otp's throttling (exponential delay after each failure, OTP_*_THROTTLE_FACTOR);
- refuses a TOTP code of a time step at or before the last accepted one (`TOTPDevice.last_t`),
  so a code works once, and tells a replay apart from a wrong code for the audit log;
- records each refusal as an audit DENIED event with no appointment; `detail` names the outcome
  and the step ("otp wrong code (login)"), never the code or anything personal.
"""

import time
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecondFactorLock, User
from audit.actors import Actor
from audit.models import Action
from audit.services import record_access

BACKUP_CODE_COUNT = 10
TOTP_DIGITS = 6  # TOTPDevice's default; backup codes are 8 base32 characters
AUTHENTICATOR_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup codes"


class Outcome(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong code"
    REPLAYED = "replayed code"
    THROTTLED = "throttled"
    LOCKED = "locked out"


class Purpose(StrEnum):
    """The step a code was typed at; it names the step in the audit log."""

    LOGIN = "login"
    SETUP = "setup"
    REAUTH = "re-authentication"


@dataclass(frozen=True)
class Verification:
    outcome: Outcome
    device: Device | None = None
    locked_until: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


class TwoFactorRequired(Exception):
    """Privileged accounts cannot turn two-step verification off."""


# --- State ----------------------------------------------------------------------------------


def is_verified(user: Any) -> bool:
    """Whether `user` (request.user) passed the second factor in this session.

    Safe on any user object: one that did not go through OTPMiddleware (DRF's
    force_authenticate, a user built by hand) has no `otp_device` and is not verified.
    """
    return getattr(user, "otp_device", None) is not None


def authenticator_for(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def has_authenticator(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def code_prompt_url(next_url: str) -> str:
    """The code prompt, coming back to `next_url`; it sends an account without an authenticator
    on to enrolment itself."""
    return f"{reverse('accounts:two-factor-verify')}?{urlencode({'next': next_url})}"


def second_factor_url(user: User, *, next_url: str = "") -> str:
    """Where a session without its second factor goes: the code prompt, or enrolment for a
    privileged account that has no authenticator yet."""
    name = "two-factor-verify" if has_authenticator(user) else "two-factor-setup"
    url = reverse(f"accounts:{name}")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


# --- Verification ---------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


@transaction.atomic
def verify_code(
    *, actor: Actor, user: User, code: str, purpose: Purpose, device: TOTPDevice | None = None
) -> Verification:
    """Check a TOTP or backup code of `user` (or, at enrolment, a code of the pending `device`).

    Refusals are recorded and counted in this transaction, which commits: callers answer with
    the outcome, never by raising.
    """
    now = timezone.now()
    lock = SecondFactorLock.objects.select_for_update().filter(user=user).first()
    if lock is not None and lock.locked_until is not None and lock.locked_until > now:
        _record_refusal(actor=actor, outcome=Outcome.LOCKED, purpose=purpose)
        return Verification(Outcome.LOCKED, locked_until=lock.locked_until)
    matched, outcome = _check_code(user=user, code=normalize_code(code), pending=device)
    if outcome is Outcome.VERIFIED:
        if lock is not None and (lock.failures or lock.locked_until):
            lock.failures, lock.last_failure_at, lock.locked_until = 0, None, None
            lock.save()
        return Verification(outcome, device=matched)
    locked_until = _count_failure(user=user, lock=lock, now=now)
    _record_refusal(actor=actor, outcome=outcome, purpose=purpose)
    return Verification(outcome, locked_until=locked_until)


def _check_code(
    *, user: User, code: str, pending: TOTPDevice | None
) -> tuple[Device | None, Outcome]:
    if pending is not None:
        device = TOTPDevice.objects.select_for_update().filter(pk=pending.pk, user=user).first()
        return (device, _check_totp(device, code)) if device else (None, Outcome.WRONG)
    if code.isdigit() and len(code) == TOTP_DIGITS:
        totp = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=True)
            .order_by("-pk")
            .first()
        )
        return (totp, _check_totp(totp, code)) if totp else (None, Outcome.WRONG)
    backup = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    return (backup, _check_backup(backup, code)) if backup else (None, Outcome.WRONG)


def _check_totp(device: TOTPDevice, code: str) -> Outcome:
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return Outcome.THROTTLED
    if device.verify_token(code):
        return Outcome.VERIFIED
    return Outcome.REPLAYED if _was_already_used(device, code) else Outcome.WRONG


def _was_already_used(device: TOTPDevice, code: str) -> bool:
    """A code valid right now but of a time step no later than the last accepted one."""
    if not code.isdigit():
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return totp.verify(int(code), device.tolerance) and totp.t() <= device.last_t


def _check_backup(device: StaticDevice, code: str) -> Outcome:
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return Outcome.THROTTLED
    # verify_token deletes the matching code: each works once.
    return Outcome.VERIFIED if device.verify_token(code) else Outcome.WRONG


def _count_failure(*, user: User, lock: SecondFactorLock | None, now: datetime) -> datetime | None:
    if lock is None:
        lock, _ = SecondFactorLock.objects.select_for_update().get_or_create(user=user)
    window = timedelta(seconds=settings.OTP_LOCKOUT_SECONDS)
    if lock.last_failure_at is None or now - lock.last_failure_at > window:
        lock.failures = 0  # an old failure is not part of this run
    lock.failures += 1
    lock.last_failure_at = now
    lock.locked_until = None
    if lock.failures >= settings.OTP_LOCKOUT_FAILURES:
        lock.failures = 0
        lock.locked_until = now + window
    lock.save()
    return lock.locked_until


def _record_refusal(*, actor: Actor, outcome: Outcome, purpose: Purpose) -> None:
    record_access(actor=actor, action=Action.DENIED, detail=f"otp {outcome} ({purpose})")


# --- Enrolment, backup codes, turning off ---------------------------------------------------


@transaction.atomic
def start_enrolment(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator for `user`; earlier unconfirmed ones are dropped, so a
    secret shown to one session is never confirmed from another."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def pending_authenticator(*, user: User, device_id: Any) -> TOTPDevice | None:
    try:
        return TOTPDevice.objects.filter(pk=int(device_id), user=user, confirmed=False).first()
    except (TypeError, ValueError):
        return None


@transaction.atomic
def complete_enrolment(*, user: User, device: TOTPDevice) -> list[str]:
    """Make `device` (whose code was just verified) the user's only authenticator, turn two-step
    verification on, and return a fresh set of backup codes (to show once)."""
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    User.objects.filter(pk=user.pk).update(two_factor_enabled=True)
    user.two_factor_enabled = True
    return _replace_backup_codes(user=user)


@transaction.atomic
def regenerate_backup_codes(*, user: User) -> list[str]:
    return _replace_backup_codes(user=user)


def _replace_backup_codes(*, user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
    )
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def disable_two_factor(*, user: User) -> None:
    """Remove a patient's authenticator and backup codes. Raises TwoFactorRequired for a
    privileged account, which may only replace its authenticator."""
    if user.is_privileged:
        raise TwoFactorRequired
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    User.objects.filter(pk=user.pk).update(two_factor_enabled=False)
    user.two_factor_enabled = False


def forget_missing_authenticator(*, user: User) -> None:
    """A patient whose devices were removed (by an admin) no longer has two-step verification."""
    if not user.is_privileged and not has_authenticator(user):
        User.objects.filter(pk=user.pk).update(two_factor_enabled=False)
        user.two_factor_enabled = False


# --- Presentation of a new authenticator ----------------------------------------------------


def qr_code_svg(device: TOTPDevice) -> str:
    """The otpauth:// link as an inline SVG QR code, drawn here: the secret never leaves the
    server for a third-party QR service."""
    return str(segno.make(device.config_url, error="m").svg_inline(scale=5, border=2))


def manual_secret(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
