"""Signed, expiring tokens for email links (no database row: the signature is the proof)."""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from accounts import crypto

SALT = "accounts.verify-email"


class InvalidToken(Exception):
    """The link was tampered with, truncated or has expired."""


@dataclass(frozen=True)
class Verification:
    user_id: int
    next_url: str


def make_verification_token(*, user_id: int, next_url: str = "") -> str:
    return signing.dumps({"user": user_id, "next": next_url}, salt=SALT, compress=True)


def read_verification_token(token: str) -> Verification:
    max_age = settings.ACCOUNTS_VERIFICATION_DAYS * 24 * 3600
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
        return Verification(user_id=int(payload["user"]), next_url=str(payload.get("next") or ""))
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        # SignatureExpired is a BadSignature: expired and forged links get the same answer.
        raise InvalidToken from exc


# --- Email change ---------------------------------------------------------------------------
# The new address travels in the link, so it is encrypted (a signed payload is only encoded):
# no personal data in URLs. The blind index of the address the change was asked from makes the
# link void once the account's email has changed by other means.

EMAIL_CHANGE_SALT = "accounts.change-email"
EMAIL_CHANGE_CONTEXT = "accounts.change-email.link"


@dataclass(frozen=True)
class EmailChange:
    user_id: int
    new_email: str
    from_index: str


def make_email_change_token(*, user_id: int, new_email: str, from_index: str) -> str:
    sealed = crypto.encrypt(new_email, context=EMAIL_CHANGE_CONTEXT)
    payload = {"user": user_id, "email": sealed, "from": from_index}
    return signing.dumps(payload, salt=EMAIL_CHANGE_SALT, compress=True)


def read_email_change_token(token: str) -> EmailChange:
    max_age = settings.ACCOUNTS_EMAIL_CHANGE_HOURS * 3600
    try:
        payload = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=max_age)
        return EmailChange(
            user_id=int(payload["user"]),
            new_email=crypto.decrypt(str(payload["email"]), context=EMAIL_CHANGE_CONTEXT),
            from_index=str(payload["from"]),
        )
    except (signing.BadSignature, crypto.DecryptionError, KeyError, TypeError, ValueError) as exc:
        raise InvalidToken from exc
