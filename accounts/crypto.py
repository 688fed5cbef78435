"""Authenticated encryption of personal data and keyed blind indexes (DESIGN invariant 5).

Tokens
    `v2:<key id>:<base64(nonce | ciphertext+tag)>`, AES-256-GCM with a random 96-bit nonce. The
    associated data names the value's place: `<table>.<column>.<row uuid>` for model fields
    (accounts.fields; the row uuid is the model's `crypto_row_id`), so a ciphertext copied to
    another row, column or table fails authentication instead of showing someone else's data.
    `v1:` tokens (written before row binding) were bound to `<table>.<column>` only; they still
    decrypt, and `rotate_encryption_key` rewrites them as v2. Callers outside the models (the
    email-change link) pass their own fixed context; their v1 tokens decrypt with that context.

Field encryption keys: FIELD_ENCRYPTION_KEYS
    Comma-separated base64 32-byte keys, newest first. The first encrypts; every listed key
    decrypts (the token names its key by an 8-hex id derived from the key, never the key). To
    rotate: generate a key (`python -c "import base64, secrets;
    print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"`), put it first, deploy
    every process (web, workers, beat) with the new list, run `manage.py rotate_encryption_key`
    (batches, resumable, re-run until it reports nothing left; `--check` tells without writing),
    then drop the old key and deploy again. An old key left in the list keeps old backups and
    old v1 tokens readable by whoever holds them: retire it once rotation is complete. Losing
    every key listed for a value loses that value (crypto-shredding relies on exactly this).

Blind-index keys: BLIND_INDEX_KEYS (BLIND_INDEX_KEY is the one-key form)
    A separate secret: a leaked index key lets an attacker confirm guesses of emails and phones
    but decrypts nothing, and the encryption keys can rotate without touching the indexes. The
    first key computes the index stored on save; lookups (login by email, patient by phone) try
    the index under every listed key, so users keep logging in while `rotate_blind_index`
    recomputes each stored index with the first key from the decrypted value. To rotate: put the
    new key first, deploy, run `rotate_blind_index`, drop the old key, deploy. While two keys
    are listed, uniqueness of an account email is checked by the lookup (signup, email change)
    but the database unique constraint only sees one key's index.

Keys are never logged, and neither plaintexts nor tokens appear in exception messages.
"""

import base64
import hashlib
import hmac
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TOKEN_VERSION = "v2"  # noqa: S105 - the token format tag, not a secret
LEGACY_VERSION = "v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted (unknown key, tampered or moved ciphertext)."""


def _decode_key(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError as exc:
        raise ImproperlyConfigured("An encryption key is not valid base64.") from exc
    if len(key) != 32:
        raise ImproperlyConfigured("Encryption keys must be 32 bytes (base64-encoded).")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"creneau-key-id" + key).hexdigest()[:8]


@lru_cache(maxsize=4)
def _keyring(encoded_keys: tuple[str, ...]) -> tuple[tuple[str, AESGCM], ...]:
    if not encoded_keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    keys = [_decode_key(encoded) for encoded in encoded_keys]
    return tuple((key_id(key), AESGCM(key)) for key in keys)


def keyring() -> tuple[tuple[str, AESGCM], ...]:
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def current_prefix() -> str:
    """The start of every token written now: format and newest key id."""
    return f"{TOKEN_VERSION}:{keyring()[0][0]}:"


def encrypt(plaintext: str, *, context: str) -> str:
    current_id, aead = keyring()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext.encode(), context.encode())
    return f"{TOKEN_VERSION}:{current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, context: str, legacy_context: str | None = None) -> str:
    """The plaintext of a token written for `context`; a v1 token is checked against
    `legacy_context` (default: `context`), the place it was bound to before row binding."""
    try:
        version, wanted_id, payload = token.split(":", 2)
        raw = base64.urlsafe_b64decode(payload)
    except ValueError as exc:
        raise DecryptionError("malformed token") from exc
    if version == LEGACY_VERSION:
        context = context if legacy_context is None else legacy_context
    elif version != TOKEN_VERSION:
        raise DecryptionError("unknown token version")
    for candidate_id, aead in keyring():
        if candidate_id == wanted_id:
            try:
                return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
            except InvalidTag as exc:
                # Never include the token or the context value: the message may reach a log.
                raise DecryptionError("authentication failed") from exc
    raise DecryptionError("no key with this id")


def needs_reencryption(token: str) -> bool:
    """Whether a stored token is in an older format or under an older key."""
    return not token.startswith(current_prefix())


# --- Blind indexes --------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    """Digits with a leading + in international form; French national numbers become +33."""
    digits = re.sub(r"[^\d+]", "", value.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        digits = "+33" + digits[1:]
    return digits


NORMALIZERS = {"email": normalize_email, "phone": normalize_phone}


@lru_cache(maxsize=8)
def _index_key(encoded: str) -> bytes:
    return hashlib.sha256(b"creneau-blind-index" + encoded.encode()).digest()


def index_keys() -> tuple[str, ...]:
    """BLIND_INDEX_KEYS, newest first; BLIND_INDEX_KEY alone when the list is not set."""
    keys = tuple(getattr(settings, "BLIND_INDEX_KEYS", None) or ())
    if not keys:
        single = getattr(settings, "BLIND_INDEX_KEY", "")
        keys = (single,) if single else ()
    if not keys:
        raise ImproperlyConfigured("BLIND_INDEX_KEYS is empty.")
    return keys


def _index_with(encoded_key: str, value: str, kind: str) -> str:
    normalized = NORMALIZERS[kind](value)
    key = _index_key(encoded_key)
    return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


def blind_index(value: str, *, kind: str) -> str:
    """Keyed HMAC of the normalized value under the newest key: what a row stores."""
    return _index_with(index_keys()[0], value, kind)


def blind_indexes(value: str, *, kind: str) -> list[str]:
    """The value's index under every configured key, newest first: what a lookup tries, so rows
    not yet recomputed by `rotate_blind_index` are still found."""
    return [_index_with(key, value, kind) for key in index_keys()]
