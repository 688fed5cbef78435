"""Signed, expiring email-verification tokens (no database row: the signature is the proof)."""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

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
