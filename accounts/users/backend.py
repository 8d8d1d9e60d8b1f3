"""The authentication backend: mozilla-django-oidc's hooks, each delegating to a service.

What changes from stock mozilla-django-oidc 5.0.2: the ID token is fully validated
(``tokens.validate_id_token``), keys come from a shared JWKS cache, users are found by
(issuer, subject) and never by email, userinfo must be about the same ``sub``, claims map
onto groups, staff and superuser, and ``get_user`` refuses deactivated users.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.errors import TokenError
from accounts.models import OIDCIdentity
from accounts.oidc.authorization import callback_url
from accounts.oidc.discovery import endpoint
from accounts.oidc.requirement import Requirement, check_id_token
from accounts.oidc.token_endpoint import token_request
from accounts.oidc.tokens import validate_id_token
from accounts.oidc.userinfo import userinfo_claims
from accounts.providers.provider import Provider
from accounts.providers.registry import default_provider
from accounts.users.identities import resolve_user

logger = logging.getLogger("accounts.backends")  # the name operators filter on, kept across moves


class OIDCBackend(OIDCAuthenticationBackend):
    """Sign users in with an authorization code; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads and checks settings here, on every request that touches auth;
        # accounts/checks.py checks the configuration once instead.
        self.UserModel = get_user_model()

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        code: str | None = None,
        code_verifier: str | None = None,
        nonce: str | None = None,
        requirement: Requirement | None = None,
        provider: Provider | None = None,
        **kwargs: Any,
    ):
        """Exchange the code at the state's provider, validate its ID token, return the user.

        Every step uses that one provider: its token endpoint and client, its keys, issuer
        and audience, its userinfo and claim mapping. Raises OIDCError on any refusal.
        ``requirement``: the ``max_age``/``acr_values`` the authorization request asked for.
        """
        if request is None or not code or not code_verifier:
            return None  # not an OIDC callback: let other backends try
        self.request = request
        self.provider = provider or default_provider()
        tokens = self.get_token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback_url(request, self.provider),
                "code_verifier": code_verifier,
            }
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise TokenError("missing_id_token", "The identity provider sent no ID token.")
        request.oidc_pending_id_token = id_token  # for the log line if it is rejected
        payload = self.verify_token(id_token, nonce=nonce, requirement=requirement)
        request.oidc_log_identity = {"iss": payload["iss"], "sub": payload["sub"]}
        user = self.get_or_create_user(tokens.get("access_token"), id_token, payload)
        self.store_tokens(tokens, payload)
        return user

    def get_token(self, payload: dict[str, str]) -> dict[str, Any]:
        url = endpoint("token_endpoint", provider=self.provider)
        return token_request(url, payload, provider=self.provider)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        claims = validate_id_token(token, nonce=kwargs.get("nonce"), provider=self.provider)
        check_id_token(claims, kwargs.get("requirement"))  # OIDC Core 3.1.3.7 steps 12-13
        return claims

    def get_userinfo(self, access_token: str | None, id_token: str, payload: dict[str, Any]):
        """The ID token's claims, with userinfo's merged over them when enabled."""
        claims = dict(payload)
        if self.provider.fetch_userinfo and access_token:
            claims.update(userinfo_claims(access_token, sub=payload["sub"], provider=self.provider))
        claims["iss"], claims["sub"] = payload["iss"], payload["sub"]
        return claims

    def filter_users_by_claims(self, claims: dict[str, Any]):
        """Users are matched by (issuer, subject) of this provider, never by email."""
        return self.UserModel.objects.filter(
            oidc_identities__issuer=claims.get("iss"),
            oidc_identities__subject=claims.get("sub"),
            oidc_identities__provider=self.provider.slug,
        )

    def get_or_create_user(self, access_token: str | None, id_token: str, payload: dict[str, Any]):
        claims = self.get_userinfo(access_token, id_token, payload)
        user = resolve_user(issuer=payload["iss"], claims=claims, provider=self.provider)
        logger.info(
            "signed in: iss=%s sub=%s user=%s provider=%s",
            payload["iss"],
            payload["sub"],
            user.pk,
            self.provider.slug,
        )
        return user

    def store_tokens(self, tokens: dict[str, Any], payload: dict[str, Any]) -> None:  # type: ignore[override]
        """Keep the tokens on the request; the view stores them once the session key rotated."""
        self.request.oidc_tokens = (tokens, payload)

    def get_user(self, user_id: Any):
        """Honour ``user_can_authenticate``: a deactivated user loses access on the next request."""
        try:
            user = self.UserModel._default_manager.get(pk=user_id)
        except self.UserModel.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


def identity_for(user: Any) -> OIDCIdentity | None:
    if not user.is_authenticated:
        return None
    # NULLS LAST: on PostgreSQL a descending order puts never-used identities first.
    return user.oidc_identities.order_by(F("last_login_at").desc(nulls_last=True), "-pk").first()
