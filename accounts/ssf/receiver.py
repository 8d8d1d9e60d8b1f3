"""Delivery of Security Event Tokens: push (RFC 8935) and the processing poll shares.

Push: the ``Authorization`` header names the provider (its exact configured value, checked
before the body is read), the body is capped and decoded, the SET's ``iss`` must be that
provider's, ``sets.verify_set`` checks it, and then, in one transaction, its ``jti`` is
remembered in the database (so a replay to any instance is refused) and each event is
acted on. A refusal never touches a session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.conf import oidc_settings
from accounts.errors import TokenError
from accounts.providers.provider import Provider
from accounts.providers.registry import enabled_providers
from accounts.sessions.logout import remember_jti
from accounts.ssf import streams
from accounts.ssf.decoding import compact_parts
from accounts.ssf.errors import SetRefused
from accounts.ssf.events import Outcome, apply_event
from accounts.ssf.sets import refused, verify_set

logger = logging.getLogger("accounts.ssf")

SET_CONTENT_TYPE = "application/secevent+jwt"


@dataclass(frozen=True)
class Accepted:
    """A SET acted on: its provider, ``jti`` and what each event did."""

    provider: Provider
    jti: str
    outcomes: list[tuple[str, Outcome]]


def push_providers(authorization: str | None) -> list[Provider]:
    """The providers this ``Authorization`` value belongs to: 401 when absent, 403 when none."""
    if not authorization:
        raise SetRefused(
            "authentication_failed",
            "The push carries no Authorization header; send the value configured for your stream.",
            reason="no_authorization",
            status=401,
        )
    providers = streams.providers_for_authorization(authorization)
    if not providers:
        raise _denied()
    return providers


def _denied() -> SetRefused:
    return SetRefused(
        "access_denied",
        "The Authorization header is not the one configured for this transmitter.",
        reason="wrong_authorization",
        status=403,
    )


def _provider_of(claims: dict[str, Any], providers: list[Provider]) -> Provider:
    """The authorised provider whose issuer the SET names (and audience, when several)."""
    iss = claims.get("iss")
    matching = [p for p in providers if p.issuer == iss]
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if len(matching) > 1:
        matching = [p for p in matching if (p.ssf_audience or p.client_id) in audiences] or matching
    if matching:
        return matching[0]
    if any(p.issuer == iss for p in enabled_providers()):
        raise _denied()  # a value of one provider does not authorise another's SETs
    raise refused("wrong_issuer")


def accept_push(
    body: bytes,
    *,
    content_type: str,
    providers: list[Provider],
    request: HttpRequest | None = None,
) -> Accepted:
    """Verify and act on one pushed SET from one of the ``providers`` the header named."""
    if content_type.split(";")[0].strip().lower() != SET_CONTENT_TYPE:
        raise SetRefused(
            "invalid_request",
            f"The body must be a Security Event Token sent as {SET_CONTENT_TYPE}.",
            reason="wrong_content_type",
        )
    token, header, unverified = compact_parts(body)
    provider = _provider_of(unverified, providers)
    return accept_set(token, header, unverified, provider=provider, request=request)


def accept_set(
    token: str,
    header: dict[str, Any],
    unverified: dict[str, Any],
    *,
    provider: Provider,
    request: HttpRequest | None = None,
) -> Accepted:
    """Verify one SET of ``provider``, remember its ``jti`` and act on its events, once."""
    claims = verify_set(token, header, unverified, provider)
    with transaction.atomic():
        try:
            remember_jti(
                issuer=f"ssf:{claims['iss']}"[:255],
                jti=claims["jti"],
                exp=float(claims["iat"]) + oidc_settings.OIDC_SSF_MAX_AGE,
            )
        except TokenError as exc:
            raise refused("replayed") from exc
        outcomes = [
            (name, apply_event(name, body, claims=claims, provider=provider, request=request))
            for name, body in claims["events"].items()
        ]
    streams.record_event(provider, list(claims["events"])[-1])
    for name, outcome in outcomes:
        logger.info(
            "shared signal: provider=%s event=%s action=%s sessions=%d users=%d",
            provider.slug,
            name[:200],
            outcome.action,
            outcome.sessions,
            len(outcome.users),
        )
    return Accepted(provider=provider, jti=claims["jti"], outcomes=outcomes)
