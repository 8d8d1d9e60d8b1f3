"""Authenticated encryption of secrets at rest, under keys derived from ``SECRET_KEY``.

A stored value reads ``enc1$<key id>$<base64 of nonce + AES-256-GCM ciphertext>``. The key is
derived from ``SECRET_KEY`` with HKDF and a ``purpose`` (tokens and client secrets never
share a key); the key id says which secret encrypted the value, so a value written under a
key now in ``SECRET_KEY_FALLBACKS`` is read with that key at once, and ``needs_rotation``
tells the caller to write it again under the current key. The purpose is also bound into
the ciphertext as associated data, so a value cannot be moved from one column to another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "enc1"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """The value was not written under the current key nor under any fallback key."""


@functools.lru_cache(maxsize=32)
def _derive(secret: str, purpose: str) -> tuple[str, bytes]:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"accounts.crypto",
        info=purpose.encode(),
    ).derive(secret.encode())
    key_id = hashlib.sha256(b"key-id:" + key).hexdigest()[:12]
    return key_id, key


def _keys(purpose: str) -> list[tuple[str, bytes]]:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derive(secret, purpose) for secret in secrets]


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX + "$")


def encrypt(plaintext: str, *, purpose: str) -> str:
    """Encrypt ``plaintext`` under the current key; the empty string stays empty."""
    if not plaintext:
        return ""
    key_id, key = _keys(purpose)[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{PREFIX}${key_id}${base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(value: str, *, purpose: str) -> str:
    """Read a value written by ``encrypt`` under the current or a fallback key."""
    if not value:
        return ""
    try:
        prefix, key_id, body = value.split("$", 2)
        raw = base64.urlsafe_b64decode(body.encode())
    except (ValueError, binascii.Error) as exc:
        raise DecryptionError("not an encrypted value") from exc
    if prefix != PREFIX:
        raise DecryptionError("not an encrypted value")
    for candidate_id, key in _keys(purpose):
        if candidate_id == key_id:
            try:
                sealed = AESGCM(key).decrypt(
                    raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()
                )
            except InvalidTag as exc:
                raise DecryptionError("the value was altered") from exc
            return sealed.decode()
    raise DecryptionError("written under a key that is neither current nor a fallback")


def needs_rotation(value: str, *, purpose: str) -> bool:
    """Whether a stored value should be written again under the current key."""
    if not value:
        return False
    if not is_encrypted(value):
        return True
    return value.split("$", 2)[1] != _keys(purpose)[0][0]


def key_ids(purpose: str) -> list[str]:
    """The ids of the keys that can read a value: the current one first, then fallbacks.

    Cheap (the keys are derived once and cached): the session middleware compares a
    session's key id with these on every request without decrypting anything.
    """
    return [key_id for key_id, _ in _keys(purpose)]
