"""Bearer tokens for the directory APIs: this site's own client-credentials token.

The token comes from the provider's token endpoint (``grant_type=client_credentials``,
client authentication as for sign-in, scope ``OIDC_SYNC_SCOPE`` when set). A long run can
outlive the token, so sources call ``renew()`` once when an API answers 401.
"""

from __future__ import annotations

import logging

from accounts.conf import oidc_settings
from accounts.errors import OIDCError
from accounts.oidc.discovery import endpoint
from accounts.oidc.token_endpoint import token_request
from accounts.providers.provider import Provider
from accounts.sync.errors import SourceError

logger = logging.getLogger(__name__)


class ClientCredentials:
    """A client-credentials access token, fetched on first use and renewed on demand."""

    renewable = True

    def __init__(self, *, scope: str | None = None, provider: Provider | None = None) -> None:
        self._scope = oidc_settings.OIDC_SYNC_SCOPE if scope is None else scope
        self._provider = provider
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = self._fetch()
        return self._token

    def renew(self) -> str:
        self._token = self._fetch()
        return self._token

    def _fetch(self) -> str:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        try:
            url = endpoint("token_endpoint", provider=self._provider)
            answer = token_request(url, data, provider=self._provider)
        except OIDCError as exc:
            raise SourceError(
                f"client-credentials grant failed at the provider ({exc.code})"
            ) from exc
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceError("the token endpoint answered without an access_token")
        logger.info("got a client-credentials token for directory sync")
        return token


class StaticToken:
    """A configured bearer token (``OIDC_SCIM_TOKEN``): nothing to renew."""

    renewable = False

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def renew(self) -> str:
        raise SourceError("the directory refused the configured token (401)")
