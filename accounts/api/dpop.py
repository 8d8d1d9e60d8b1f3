"""DPoP at the site's API (RFC 9449 section 7): ``Authorization: DPoP <token>`` + ``DPoP: <proof>``.

A DPoP-bound access token (``cnf.jkt``, section 6) is only good together with a proof that
its caller holds the key: a JWT with ``typ`` ``dpop+jwt``, an asymmetric ``alg``, the
public ``jwk`` it is signed with, ``htm``/``htu`` of this very request, ``iat`` within the
clock leeway, a ``jti`` used once, ``ath`` = the token's hash (and this site's ``nonce``
when ``OIDC_API_DPOP_NONCE`` is on). The key's thumbprint must be the token's ``cnf.jkt``.

The checks run cheapest first: everything that needs no key before the token is checked
(``start_proof``), then the thumbprint, the proof's one signature verification and the
``jti`` (``ProofCheck.finish``): a request costs at most one signature verification more
than a bearer request, whose token check is cached. The ``jti`` is remembered in the shared
cache for the proof's lifetime, so a proof replayed to another process is refused too.

A proof is parsed defensively: at most 16 KB, any decoding error (including a
``RecursionError`` from nested JSON) is a refusal in words.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest
from jwt.algorithms import get_default_algorithms

from accounts.api.access_tokens import BearerError
from accounts.conf import oidc_settings
from accounts.oidc.jose_safe import UnreadableToken, read_jws
from accounts.security import shared_cache

PROOF_TYPE = "dpop+jwt"
PROOF_MAX_BYTES = 16 * 1024
# Asymmetric algorithms only (RFC 9449 4.2): never none, never HMAC.
ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "EdDSA")
ALGS_PARAM = " ".join(ALGORITHMS)
_KTY = {"ES": "EC", "PS": "RSA", "RS": "RSA", "Ed": "OKP"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
NONCE_WINDOW = 60  # seconds a nonce of this site is good for (and the previous one too)

REASONS = {
    "proof_missing": "A DPoP request needs exactly one DPoP header carrying a proof.",
    "proof_too_large": "The DPoP proof is larger than 16 KB.",
    "proof_malformed": "The DPoP proof could not be read as a signed JWT.",
    "proof_wrong_type": "The DPoP proof's typ header is not dpop+jwt.",
    "proof_alg": "The DPoP proof is not signed with an asymmetric algorithm this API accepts.",
    "proof_key": "The DPoP proof's jwk header is not a public key for its algorithm.",
    "proof_signature": "The DPoP proof's signature does not verify with its own key.",
    "proof_htm": "The DPoP proof was made for another HTTP method.",
    "proof_htu": "The DPoP proof was made for another URL.",
    "proof_iat": "The DPoP proof is too old or from the future: check the client's clock.",
    "proof_jti": "The DPoP proof has no usable jti.",
    "proof_replayed": "This DPoP proof was already used: make a new one for every request.",
    "proof_ath": "The DPoP proof was made for another access token (its ath does not match).",
    "proof_key_mismatch": "The DPoP proof is signed with another key than the one the access "
    "token is bound to.",
    "use_dpop_nonce": "This API needs a DPoP proof with its nonce: make a new proof with the "
    "DPoP-Nonce it sent.",
}


class DPoPError(BearerError):
    """A refused DPoP proof: 401, ``WWW-Authenticate: DPoP error="invalid_dpop_proof"``."""

    code = "invalid_dpop_proof"
    message = "The DPoP proof is not valid."
    error = "invalid_dpop_proof"
    nonce = ""


def fail(reason: str) -> DPoPError:
    error = DPoPError(reason, REASONS.get(reason, DPoPError.message))
    if reason == "use_dpop_nonce":
        error.error = "use_dpop_nonce"
        error.nonce = current_nonce()
    return error


def token_not_bound() -> BearerError:
    return BearerError(
        "token_not_bound",
        "This access token is not DPoP-bound: send it with Authorization: Bearer.",
    )


def bound_as_bearer() -> BearerError:
    return BearerError(
        "dpop_bound_token",
        "This access token is bound to a DPoP key: send it with Authorization: DPoP and a "
        "DPoP proof.",
    )


def bound_jkt(claims: dict[str, Any]) -> str | None:
    """The ``cnf.jkt`` a token is bound to (RFC 9449 6.1), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and jkt else None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of a public JWK (its required members only)."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
    try:
        canonical = json.dumps(
            {m: jwk[m] for m in members[jwk["kty"]]}, separators=(",", ":"), ensure_ascii=False
        )
    except (KeyError, TypeError) as exc:
        raise fail("proof_key") from exc
    return b64url(hashlib.sha256(canonical.encode()).digest())


def current_nonce(now: float | None = None, window: int = 0) -> str:
    """This site's DPoP nonce: an HMAC of the time window under the secret key, stateless."""
    slot = int((time.time() if now is None else now) // NONCE_WINDOW) - window
    key = hashlib.sha256(b"dpop-nonce:" + settings.SECRET_KEY.encode()).digest()
    return b64url(hmac.new(key, str(slot).encode(), hashlib.sha256).digest()[:18])


def _nonce_ok(nonce: Any) -> bool:
    if not isinstance(nonce, str):
        return False
    return any(hmac.compare_digest(nonce, current_nonce(window=w)) for w in (0, 1))


def request_htu(request: HttpRequest) -> str:
    """This request's URL without query and fragment, as the proof's ``htu`` names it."""
    return request.build_absolute_uri(request.path)


def _same_url(claimed: Any, actual: str) -> bool:
    if not isinstance(claimed, str):
        return False
    claimed = claimed.split("#", 1)[0].split("?", 1)[0]
    scheme, _, rest = claimed.partition("://")
    host, _, path = rest.partition("/")
    a_scheme, _, a_rest = actual.partition("://")
    a_host, _, a_path = a_rest.partition("/")
    return (scheme.lower(), host.lower(), path) == (a_scheme.lower(), a_host.lower(), a_path)


@dataclass
class ProofCheck:
    """A proof that passed every check needing no key; ``finish`` does the rest."""

    proof: str
    header: dict[str, Any]
    claims: dict[str, Any]

    def finish(self, token_claims: dict[str, Any]) -> None:
        """The token's ``cnf.jkt``, the proof's signature, then its ``jti`` once."""
        jkt = bound_jkt(token_claims)
        if jkt is None:
            raise token_not_bound()
        jwk = self.header["jwk"]
        if not hmac.compare_digest(thumbprint(jwk), jkt):
            raise fail("proof_key_mismatch")
        alg = self.header["alg"]
        algorithm = _ALGORITHMS[alg]
        key = _public_key(algorithm, jwk, jkt)
        signing_input, _, signature = self.proof.rpartition(".")
        try:
            valid = algorithm.verify(
                signing_input.encode(), key, base64.urlsafe_b64decode(signature + "==")
            )
        except (ValueError, TypeError) as exc:
            raise fail("proof_signature") from exc
        if not valid:
            raise fail("proof_signature")
        lifetime = 2 * oidc_settings.OIDC_CLOCK_LEEWAY + 1
        digest = hashlib.sha256(f"{jkt}:{self.claims['jti']}".encode()).hexdigest()[:40]
        if not shared_cache.add(f"oidc:dpop-jti:{digest}", 1, lifetime):
            raise fail("proof_replayed")


_ALGORITHMS = {name: get_default_algorithms()[name] for name in ALGORITHMS}
# Public keys of proofs, parsed once per process: a client signs every proof with one key.
_KEYS: OrderedDict[str, Any] = OrderedDict()
_KEYS_MAX = 1024
_keys_lock = threading.Lock()


def _public_key(algorithm: Any, jwk: dict[str, Any], jkt: str) -> Any:
    """The key of a proof's ``jwk`` (its thumbprint already equals the token's ``cnf.jkt``)."""
    with _keys_lock:
        key = _KEYS.get(jkt)
    if key is None:
        try:
            key = algorithm.from_jwk(json.dumps(jwk))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, RecursionError) as exc:
            raise fail("proof_key") from exc
        with _keys_lock:
            _KEYS[jkt] = key
            while len(_KEYS) > _KEYS_MAX:
                _KEYS.popitem(last=False)
    return key


def start_proof(request: HttpRequest, access_token: str) -> ProofCheck:
    """Every check of the ``DPoP`` header that needs neither a key nor the token's claims."""
    proof = request.META.get("HTTP_DPOP", "")
    if not proof or "," in proof:  # none, or several headers joined by the server
        raise fail("proof_missing")
    try:
        header, claims = read_jws(proof, limit=PROOF_MAX_BYTES)
    except UnreadableToken as exc:
        code = "proof_too_large" if exc.code == "too_large" else "proof_malformed"
        raise fail(code) from exc
    if not proof.split(".")[2]:
        raise fail("proof_malformed")
    if header.get("typ") != PROOF_TYPE:
        raise fail("proof_wrong_type")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise fail("proof_alg")
    jwk = header.get("jwk")
    if (
        not isinstance(jwk, dict)
        or _PRIVATE_MEMBERS & set(jwk)
        or jwk.get("kty") != _KTY[str(alg)[:2]]
    ):
        raise fail("proof_key")
    _check_claims(request, claims, access_token)
    return ProofCheck(proof=proof, header=header, claims=claims)


def _check_claims(request: HttpRequest, claims: dict[str, Any], access_token: str) -> None:
    if claims.get("htm") != request.method:
        raise fail("proof_htm")
    if not _same_url(claims.get("htu"), request_htu(request)):
        raise fail("proof_htu")
    iat = claims.get("iat")
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    if (
        not isinstance(iat, (int, float))
        or isinstance(iat, bool)
        or abs(time.time() - iat) > leeway
    ):
        raise fail("proof_iat")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
        raise fail("proof_jti")
    ath = claims.get("ath")
    expected = b64url(hashlib.sha256(access_token.encode()).digest())
    if not isinstance(ath, str) or not hmac.compare_digest(ath, expected):
        raise fail("proof_ath")
    if oidc_settings.OIDC_API_DPOP_NONCE and not _nonce_ok(claims.get("nonce")):
        raise fail("use_dpop_nonce")
