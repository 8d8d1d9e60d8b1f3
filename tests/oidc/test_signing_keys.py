"""The site's signing keys: generation on first use (race-safe), rotation, the JWKS, the command."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from io import StringIO
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import CommandError, call_command

from accounts.oidc import signing_keys

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def generated(tmp_path, monkeypatch, settings):
    """No key file configured: keys are generated into a temporary GENERATED_KEY_FILE."""
    path = tmp_path / "var" / "oidc-signing-keys.pem"
    monkeypatch.setattr(signing_keys, "GENERATED_KEY_FILE", path)
    settings.OIDC_RP_SIGNING_KEY_FILE = ""
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    return path


def pem(private) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def test_a_key_is_generated_on_first_use_private_to_the_owner(generated):
    assert not generated.exists()
    keys = signing_keys.load_keys()
    assert len(keys) == 1 and keys[0].alg == "RS256"
    assert generated.stat().st_mode & 0o077 == 0  # no one else may read a private key
    assert signing_keys.load_keys()[0].kid == keys[0].kid  # the same key on the next call


def test_the_generated_key_file_is_ignored_by_git():
    path = signing_keys.GENERATED_KEY_FILE.relative_to(REPO)
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(path)], cwd=REPO, capture_output=True, check=False
    )
    assert result.returncode == 0


def test_two_processes_generating_at_once_end_with_one_key(generated):
    script = textwrap.dedent(
        f"""
        import os, sys, time, django
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        django.setup()
        from pathlib import Path
        from accounts.oidc import signing_keys
        signing_keys.GENERATED_KEY_FILE = Path({str(generated)!r})
        from django.conf import settings
        settings.OIDC_RP_SIGNING_KEY_FILE = ""
        while time.time() < {time.time() + 1.5}:
            pass  # start together
        print(signing_keys.load_keys()[0].kid)
        """
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    kids = {run.communicate(timeout=60)[0].decode().strip() for run in runs}
    assert len(kids) == 1 and "" not in kids
    assert kids == {signing_keys.load_keys()[0].kid}
    assert not [p for p in generated.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_configured_file_may_hold_several_rsa_and_ec_keys(tmp_path, settings):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "keys.pem"
    path.write_text(pem(ec_key) + "\n" + pem(rsa_key))
    settings.OIDC_RP_SIGNING_KEY_FILE = str(path)
    keys = signing_keys.load_keys()
    assert [k.alg for k in keys] == ["ES256", "RS256"]
    assert signing_keys.signing_key().alg == "ES256"  # no date: the first key signs
    jwks = signing_keys.public_jwks()["keys"]
    assert [(j["kty"], j["alg"], j["use"]) for j in jwks] == [
        ("EC", "ES256", "sig"),
        ("RSA", "RS256", "sig"),
    ]
    assert all("d" not in j for j in jwks)  # public halves only
    # The kid is the RFC 7638 thumbprint, so a key keeps its kid wherever it is loaded.
    assert jwks[1]["kid"] == jwt.PyJWK(jwks[1]).key_id == keys[1].kid


@pytest.mark.parametrize(
    "content, words",
    [
        ("", "holds no PEM private key"),
        ("not a key at all\n", "holds no PEM private key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot be read"),
    ],
)
def test_an_unusable_configured_file_is_an_error_that_says_why(tmp_path, settings, content, words):
    path = tmp_path / "keys.pem"
    path.write_text(content)
    settings.OIDC_RP_SIGNING_KEY_FILE = str(path)
    with pytest.raises(signing_keys.KeyFileError, match=words):
        signing_keys.load_keys()


def test_a_small_rsa_key_is_refused(tmp_path, settings):
    path = tmp_path / "keys.pem"
    path.write_text(pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    settings.OIDC_RP_SIGNING_KEY_FILE = str(path)
    with pytest.raises(signing_keys.KeyFileError, match="2048 bits"):
        signing_keys.load_keys()


def test_a_configured_file_that_is_missing_is_never_generated(tmp_path, settings):
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(signing_keys.KeyFileError, match="cannot be read"):
        signing_keys.load_keys()
    assert not (tmp_path / "missing.pem").exists()


def test_rotation_publishes_the_new_key_and_keeps_signing_with_the_old_one_for_a_while(
    generated, settings
):
    settings.OIDC_RP_SIGNING_KEY_DELAY = 300
    first = signing_keys.load_keys()[0]
    fresh, kept = signing_keys.rotate()
    assert kept.kid == first.kid
    assert [k["kid"] for k in signing_keys.public_jwks()["keys"]] == [fresh.kid, first.kid]
    assert signing_keys.signing_key().kid == first.kid  # providers may cache the old JWKS
    assert signing_keys.signing_key(now=time.time() + 301).kid == fresh.kid


def test_a_second_rotation_keeps_only_the_key_that_signs(generated, settings):
    settings.OIDC_RP_SIGNING_KEY_DELAY = 0
    first = signing_keys.load_keys()[0]
    second, kept = signing_keys.rotate()
    assert kept.kid == first.kid
    assert signing_keys.signing_key().kid == second.kid
    third, kept = signing_keys.rotate()
    assert kept.kid == second.kid
    assert [k.kid for k in signing_keys.load_keys()] == [third.kid, second.kid]


def test_rotation_refuses_to_overwrite_a_file_it_cannot_read(tmp_path, settings):
    path = tmp_path / "keys.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    settings.OIDC_RP_SIGNING_KEY_FILE = str(path)
    with pytest.raises(CommandError, match="cannot be rotated"):
        call_command("rotate_signing_key", stdout=StringIO())
    assert "AAAA" in path.read_text()


def test_the_rotate_command_says_which_key_is_new_and_which_keeps_signing(generated, settings):
    settings.OIDC_RP_SIGNING_KEY_DELAY = 300
    first = signing_keys.load_keys()[0]
    out = StringIO()
    call_command("rotate_signing_key", stdout=out)
    new = signing_keys.load_keys()[0]
    assert out.getvalue().splitlines() == [
        f"New key {new.kid} (RS256) written to {generated}.",
        f"Key {first.kid} keeps signing for 300 s while providers fetch the new public key; "
        "both are published at /oidc/jwks.json.",
    ]


def test_jwks_json_publishes_the_public_keys(client, generated):
    response = client.get("/oidc/jwks.json")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert response.json() == signing_keys.public_jwks()
    assert len(response.json()["keys"]) == 1


def test_jwks_json_generates_nothing_for_a_site_using_client_secrets(client, generated, settings):
    settings.OIDC_TOKEN_AUTH_METHOD = "client_secret_basic"
    response = client.get("/oidc/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert not generated.exists()


def test_jwks_json_with_an_unreadable_key_file_answers_in_words(client, tmp_path, settings):
    path = tmp_path / "keys.pem"
    path.write_text("garbage")
    settings.OIDC_RP_SIGNING_KEY_FILE = str(path)
    settings.OIDC_TOKEN_AUTH_METHOD = "private_key_jwt"
    response = client.get("/oidc/jwks.json")
    assert response.status_code == 503
    assert response.json()["message"] == "This site's public keys cannot be read."
