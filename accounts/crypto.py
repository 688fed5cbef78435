"""Authenticated encryption of personal data and keyed blind indexes (DESIGN invariant 5).

A token is `v1:<key id>:<base64(nonce | ciphertext+tag)>`, AES-256-GCM with the column as associated
data, so a value copied into another column does not decrypt. Keys come from FIELD_ENCRYPTION_KEYS,
newest first: the first encrypts, every key decrypts, which is what rotation needs.
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

TOKEN_VERSION = "v1"  # noqa: S105 - the token format tag, not a secret
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


def encrypt(plaintext: str, *, context: str) -> str:
    current_id, aead = keyring()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext.encode(), context.encode())
    return f"{TOKEN_VERSION}:{current_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, context: str) -> str:
    try:
        version, wanted_id, payload = token.split(":", 2)
        raw = base64.urlsafe_b64decode(payload)
    except ValueError as exc:
        raise DecryptionError("malformed token") from exc
    if version != TOKEN_VERSION:
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
    return not token.startswith(f"{TOKEN_VERSION}:{keyring()[0][0]}:")


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


@lru_cache(maxsize=4)
def _index_key(encoded: str) -> bytes:
    return hashlib.sha256(b"creneau-blind-index" + encoded.encode()).digest()


def blind_index(value: str, *, kind: str) -> str:
    """Keyed HMAC of the normalized value: equality lookups without storing the plaintext."""
    normalized = NORMALIZERS[kind](value)
    key = _index_key(settings.BLIND_INDEX_KEY)
    return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()
