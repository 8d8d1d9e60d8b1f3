"""How the site proves who it is to the provider on every call that authenticates the client.

``client_secret_basic`` (RFC 6749 2.3.1), ``client_secret_post``, or ``private_key_jwt``
(RFC 7523, OIDC Core 9): a short assertion signed with the site's key, which the provider
checks against the site's JWKS (``/oidc/jwks.json``). No client secret is needed then.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import jwt

from accounts.conf import FAPI2_ALGORITHMS, TOKEN_AUTH_METHODS, oidc_settings, token_auth_method
from accounts.errors import ConfigurationError
from accounts.oidc import signing_keys
from accounts.oidc.discovery import endpoint
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Long enough for one call with its timeout, short enough to be useless when captured.
ASSERTION_LIFETIME = 60


@dataclass
class ClientAuth:
    """What to add to one request: form fields, and HTTP Basic credentials or None."""

    data: dict[str, str] = field(default_factory=dict)
    basic: tuple[str, str] | None = None
    # For the log line when the provider refuses the client: what an operator should check.
    settings_to_check: str = "OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET"


def client_assertion(
    *,
    audience: str,
    now: float | None = None,
    client_id: str | None = None,
    fapi2: bool = False,
) -> str:
    """An RFC 7523 client assertion: iss = sub = client id, short ``exp``, unique ``jti``.

    ``fapi2``: only a PS256 or ES256 key may sign (FAPI 2.0 Security Profile 5.4).
    """
    try:
        key = signing_keys.signing_key(now)
    except signing_keys.KeyFileError as exc:
        raise ConfigurationError(
            "signing_key_unusable",
            "This site's signing key for the identity provider cannot be used. An "
            "administrator needs to fix OIDC_RP_SIGNING_KEY_FILE.",
            detail=f"private_key_jwt signing key file: {exc}",
        ) from exc
    if fapi2 and key.alg not in FAPI2_ALGORITHMS:
        raise ConfigurationError(
            "signing_key_not_fapi2",
            "This site's signing key cannot be used with a FAPI 2.0 identity provider. An "
            "administrator needs to replace it.",
            detail=f"the signing key {key.kid} signs {key.alg}; FAPI 2.0 needs PS256 or ES256: "
            "run manage.py rotate_signing_key (it writes an EC P-256 key while a provider "
            "has profile fapi2) or set OIDC_RP_SIGNING_KEY_FILE to an EC P-256 key",
        )
    issued = int(time.time() if now is None else now)
    client_id = client_id or oidc_settings.OIDC_RP_CLIENT_ID
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(32),  # 256 random bits: never repeats
    }
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})


def client_authentication(provider: Provider | None = None) -> ClientAuth:
    """The client authentication for one call to ``provider`` (default: ``default``).

    The method, client id and secret are the provider's; with ``private_key_jwt`` every
    provider checks the site's one key set (``/oidc/jwks.json``).
    """
    provider = provider or default_provider()
    method = token_auth_method(provider)
    client_id = provider.client_id
    where = "" if provider.is_default else f" of provider {provider.slug}"
    id_name = "OIDC_RP_CLIENT_ID" if provider.is_default else "client_id"
    secret_name = "OIDC_RP_CLIENT_SECRET" if provider.is_default else "client_secret"
    names = f"{id_name} and {secret_name}{where}"
    if method == "private_key_jwt":
        # OIDC Core 9: the audience is the token endpoint, whichever endpoint is called;
        # FAPI 2.0 5.3.2.1 (and RFC 7523bis): the issuer, as a string, instead.
        audience = (
            provider.issuer if provider.fapi2 else endpoint("token_endpoint", provider=provider)
        )
        assertion = client_assertion(audience=audience, client_id=client_id, fapi2=provider.fapi2)
        return ClientAuth(
            data={
                "client_id": client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
            settings_to_check=f"{id_name}{where}, OIDC_RP_SIGNING_KEY_FILE and the jwks_uri "
            "registered for the client (this site's /oidc/jwks.json)",
        )
    if method not in TOKEN_AUTH_METHODS:
        raise ConfigurationError(
            "unknown_auth_method",
            "This site is not configured correctly for its identity provider "
            "(OIDC_TOKEN_AUTH_METHOD). An administrator needs to fix it.",
            detail="OIDC_TOKEN_AUTH_METHOD is not one of " + ", ".join(TOKEN_AUTH_METHODS),
        )
    secret = provider.client_secret
    if method == "client_secret_basic":
        # RFC 6749 2.3.1: both are form-urlencoded before they go into the Basic header.
        return ClientAuth(
            basic=(quote_plus(client_id), quote_plus(secret)), settings_to_check=names
        )
    return ClientAuth(
        data={"client_id": client_id, "client_secret": secret}, settings_to_check=names
    )
