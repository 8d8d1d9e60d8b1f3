"""DPoP (RFC 9449) as a client: the site's DPoP key, proofs, and the providers' nonces.

The key is one EC P-256 key for the whole site (``OIDC_DPOP_KEY_FILE``, else generated on
first use into ``GENERATED_DPOP_KEY_FILE``, git-ignored), read once per process: a proof
then costs one ES256 signature. Every PAR, token (code and refresh) and userinfo request
carries a fresh proof (section 4.2); a resource request adds ``ath`` (section 4.3).

A server may demand a nonce (section 8): it answers ``use_dpop_nonce`` with a
``DPoP-Nonce`` header. The latest nonce of each server (its origin) is kept in the shared
cache, so every process of the site sends it on its first try, and a request that is
refused for want of it is sent again exactly once (``send_with_proof``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from accounts.conf import oidc_settings
from accounts.errors import ConfigurationError
from accounts.security import shared_cache

GENERATED_DPOP_KEY_FILE = Path(__file__).resolve().parents[2] / "var" / "oidc-dpop-key.pem"
PROOF_TYPE = "dpop+jwt"
ALGORITHM = "ES256"
NONCE_HEADER = "DPoP-Nonce"
# A nonce is kept this long (seconds); servers rotate theirs every few minutes and say so.
NONCE_MEMORY = 300
# RFC 9449 8.1: a nonce is 1*NQCHAR; anything else (or a huge value) is not remembered.
_NONCE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,512}$")


class DPoPKeyError(ConfigurationError):
    """The DPoP key file cannot be read, is not an EC P-256 key, or cannot be created."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "dpop_key_unusable",
            "This site's DPoP key cannot be used. An administrator needs to fix "
            "OIDC_DPOP_KEY_FILE.",
            detail=f"the DPoP key file: {reason}",
        )
        self.reason = reason


@dataclass(frozen=True)
class DPoPKey:
    """The site's DPoP key: the private key, its public JWK and RFC 7638 thumbprint."""

    private: Any
    public_jwk: dict[str, str]
    jkt: str


def key_file() -> Path:
    configured = oidc_settings.OIDC_DPOP_KEY_FILE
    return Path(configured) if configured else GENERATED_DPOP_KEY_FILE


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the required members of the key, sorted, compact, SHA-256, base64url."""
    members = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _wrap(private: Any) -> DPoPKey:
    if not (isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"):
        raise DPoPKeyError("the DPoP key must be an EC P-256 private key")
    public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public = {m: public[m] for m in ("kty", "crv", "x", "y")}
    return DPoPKey(private=private, public_jwk=public, jkt=jwk_thumbprint(public))


def _read(path: Path) -> DPoPKey:
    try:
        pem = path.read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
    except OSError as exc:
        raise DPoPKeyError(f"{path} cannot be read ({type(exc).__name__})") from exc
    except (ValueError, TypeError) as exc:
        raise DPoPKeyError(f"{path} holds no readable PEM private key") from exc
    return _wrap(private)


def create_key_file(path: Path) -> None:
    """Write a new key unless another process did first (``link`` fails if it exists)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dpop-", suffix=".tmp", dir=path.parent)  # 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: its key is everybody's
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise DPoPKeyError(f"{path} cannot be created ({type(exc).__name__})") from exc


_loaded: dict[str, DPoPKey] = {}
_load_lock = threading.Lock()


def dpop_key() -> DPoPKey:
    """The site's DPoP key, read once per process (generated first when none is configured)."""
    path = key_file()
    found = _loaded.get(str(path))
    if found is not None:
        return found
    with _load_lock:
        if str(path) not in _loaded:
            if not path.exists() and not oidc_settings.OIDC_DPOP_KEY_FILE:
                create_key_file(path)
            _loaded[str(path)] = _read(path)
    return _loaded[str(path)]


def forget_key() -> None:
    """Read the key file again on next use (tests, a replaced file)."""
    _loaded.clear()


def htu_of(url: str) -> str:
    """The ``htu`` of a request: its URL without query and fragment (RFC 9449 4.2)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def dpop_proof(
    method: str,
    url: str,
    *,
    nonce: str | None = None,
    access_token: str | None = None,
    now: float | None = None,
) -> str:
    """A fresh DPoP proof JWT for one request (RFC 9449 4.2)."""
    key = dpop_key()
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(24),
        "htm": method.upper(),
        "htu": htu_of(url),
        "iat": int(time.time() if now is None else now),
    }
    if nonce:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    headers = {"typ": PROOF_TYPE, "jwk": key.public_jwk}
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers=headers)


def _server(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _nonce_key(url: str) -> str:
    return "oidc:dpop-nonce:" + hashlib.sha256(_server(url).encode()).hexdigest()[:32]


def remembered_nonce(url: str) -> str | None:
    """The latest nonce the server of ``url`` gave, shared by every process of the site."""
    nonce = shared_cache.get(_nonce_key(url))
    return nonce if isinstance(nonce, str) else None


def remember_nonce(url: str, response: requests.Response) -> str | None:
    """Keep the ``DPoP-Nonce`` of an answer, if it carries a well-formed one; return it."""
    nonce = response.headers.get(NONCE_HEADER)
    if not nonce or not _NONCE.match(nonce):
        return None
    if nonce != remembered_nonce(url):
        shared_cache.set(_nonce_key(url), nonce, NONCE_MEMORY)
    return nonce


def asks_for_nonce(response: requests.Response) -> bool:
    """``use_dpop_nonce``: a 400 from an authorization server (RFC 9449 8), or a 401 with a
    ``WWW-Authenticate: DPoP ... error="use_dpop_nonce"`` challenge from a resource (9)."""
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    if response.status_code == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        return bool(
            re.search(r"(^|,|\s)dpop\s", challenge, re.IGNORECASE)
            and re.search(r'error\s*=\s*"?use_dpop_nonce"?', challenge)
        )
    return False


def send_with_proof(
    method: str,
    url: str,
    send: Callable[[dict[str, str]], requests.Response],
    *,
    access_token: str | None = None,
) -> requests.Response:
    """Call ``send(headers)`` with a fresh proof; on ``use_dpop_nonce`` once more with the
    server's new nonce. ``send`` builds the rest anew each time (a client assertion is
    single-use too)."""
    nonce = remembered_nonce(url)
    proof = dpop_proof(method, url, nonce=nonce, access_token=access_token)
    response = send({"DPoP": proof})
    fresh = remember_nonce(url, response)
    if fresh is None or not asks_for_nonce(response):
        return response
    proof = dpop_proof(method, url, nonce=fresh, access_token=access_token)
    response = send({"DPoP": proof})
    remember_nonce(url, response)
    return response
