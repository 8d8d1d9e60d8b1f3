"""Encryption at rest: round trip, key rotation through SECRET_KEY_FALLBACKS, tampering."""

from __future__ import annotations

import pytest

from accounts.security import crypto


def test_round_trip_hides_the_plaintext():
    sealed = crypto.encrypt("refresh-token-value", purpose="tokens")
    assert "refresh-token-value" not in sealed
    assert sealed.startswith("enc1$")
    assert crypto.decrypt(sealed, purpose="tokens") == "refresh-token-value"


def test_same_plaintext_encrypts_differently_each_time():
    assert crypto.encrypt("x", purpose="tokens") != crypto.encrypt("x", purpose="tokens")


def test_empty_stays_empty():
    assert crypto.encrypt("", purpose="tokens") == ""
    assert crypto.decrypt("", purpose="tokens") == ""


def test_a_value_of_one_purpose_is_not_readable_as_another():
    sealed = crypto.encrypt("secret", purpose="tokens")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(sealed, purpose="client-secret")


def test_value_under_a_fallback_key_is_read_and_flagged_for_rotation(settings):
    settings.SECRET_KEY = "old-key-" + "x" * 50
    sealed = crypto.encrypt("secret", purpose="tokens")
    settings.SECRET_KEY = "new-key-" + "y" * 50
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "x" * 50]
    assert crypto.decrypt(sealed, purpose="tokens") == "secret"
    assert crypto.needs_rotation(sealed, purpose="tokens")
    again = crypto.encrypt("secret", purpose="tokens")
    assert not crypto.needs_rotation(again, purpose="tokens")


def test_value_under_a_forgotten_key_is_refused(settings):
    settings.SECRET_KEY = "old-key-" + "x" * 50
    sealed = crypto.encrypt("secret", purpose="tokens")
    settings.SECRET_KEY = "new-key-" + "y" * 50
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(sealed, purpose="tokens")


@pytest.mark.parametrize("value", ["plain", "enc1$abc", "enc1$abc$!!!", "enc2$a$b"])
def test_malformed_values_are_refused(value):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(value, purpose="tokens")


def test_altered_ciphertext_is_refused():
    sealed = crypto.encrypt("secret", purpose="tokens")
    prefix, key_id, body = sealed.split("$")
    middle = len(body) // 2
    flipped = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(f"{prefix}${key_id}${flipped}", purpose="tokens")


def test_plaintext_needs_rotation():
    assert crypto.needs_rotation("plain-legacy-token", purpose="tokens")
    assert not crypto.needs_rotation("", purpose="tokens")
