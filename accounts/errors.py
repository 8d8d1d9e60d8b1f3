"""Errors of the sign-in flow: a machine code for logs and tests, and words for people."""

from __future__ import annotations


class OIDCError(Exception):
    """A rejected sign-in, token or provider answer.

    ``code`` is stable and goes into logs and JSON; ``message`` is shown to the user;
    ``detail`` goes into the one log line of the event only (which URL failed, which
    setting to check). None of them ever contains a token, a code or a secret.
    """

    code = "oidc_error"
    message = "Sign-in failed."
    status = 400

    def __init__(
        self, code: str | None = None, message: str | None = None, *, detail: str = ""
    ) -> None:
        self.code = code or self.code
        self.message = message or self.message
        self.detail = detail
        super().__init__(f"{self.code}: {self.message}")


class TokenError(OIDCError):
    """A token failed validation."""

    code = "invalid_token"
    message = "The sign-in token from the identity provider was not valid."


class StepUpError(TokenError):
    """The ID token's ``auth_time`` or ``acr`` falls short of what the admin asked for."""

    code = "step_up_refused"
    message = "The admin needs a more recent or stronger sign-in at your identity provider."
    status = 403


class StateError(OIDCError):
    """The callback's ``state`` is missing, unknown, expired or already used."""

    code = "invalid_state"
    message = "This sign-in link has expired or was already used."


class ProviderError(OIDCError):
    """The provider could not be reached or answered with an error."""

    code = "provider_error"
    message = "The identity provider could not be reached. Please try again in a moment."
    status = 502


class ProviderNotAnswering(ProviderError):
    """The provider's circuit breaker is open: it stopped answering, so we do not call it."""

    code = "provider_circuit_open"
    message = (
        "The identity provider stopped answering this site a moment ago, so sign-in was not "
        "started. Please try again in a minute; if you are signed in already, go on using the site."
    )
    status = 503


class ConfigurationError(ProviderError):
    """The provider and this site's settings disagree: a wrong secret, another issuer.

    A ``ProviderError`` so that a session is kept as while the provider is down, but named
    apart: an operator must change a setting, waiting will not help.
    """

    code = "configuration_error"
    message = (
        "Sign-in is misconfigured: the identity provider and this site's settings do not "
        "match. Please tell the site's administrators; trying again will not help."
    )
    status = 503


class InvalidGrant(ProviderError):
    """The provider refused a code or refresh token (``invalid_grant``)."""

    code = "invalid_grant"
    message = "The identity provider ended this session. Please sign in again."
    status = 401


class AccountError(OIDCError):
    """The identity is valid but no usable local account goes with it."""

    code = "account_error"
    message = "Your account cannot sign in here."
    status = 403
