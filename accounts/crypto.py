"""Kept for compatibility: sealing secrets now lives in ``accounts.security.crypto``.

Migration 0003 imports ``accounts.crypto``, and migrations are not edited after they ship.
New code imports from ``accounts.security.crypto``.
"""

from accounts.security.crypto import DecryptionError, decrypt, encrypt, is_encrypted

__all__ = ["DecryptionError", "decrypt", "encrypt", "is_encrypted"]
