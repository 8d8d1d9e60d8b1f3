"""Poll delivery (RFC 8936): fetch SETs from the transmitter, act on them, acknowledge them.

Each request acknowledges what the previous one returned (``ack`` for SETs acted on or
already seen, ``setErrs`` with the RFC 8935 error for SETs refused), asks for at most
``maxEvents`` more and returns at once; the loop runs while ``moreAvailable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from accounts.errors import OIDCError
from accounts.providers.provider import Provider
from accounts.ssf import streams
from accounts.ssf.decoding import compact_parts
from accounts.ssf.errors import SetRefused
from accounts.ssf.receiver import accept_set
from accounts.ssf.transmitter import StreamError, access_token, stream_call

logger = logging.getLogger("accounts.ssf")

MAX_ROUNDS = 1000


@dataclass
class PollResult:
    accepted: int = 0
    refused: int = 0
    errors: dict[str, dict[str, str]] = field(default_factory=dict)


def _receive(token: Any, provider: Provider) -> SetRefused | None:
    try:
        if not isinstance(token, str):
            raise SetRefused("invalid_request", "The SET is not a string.", reason="malformed")
        text, header, unverified = compact_parts(token)
        accept_set(text, header, unverified, provider=provider)
    except SetRefused as exc:
        if exc.reason == "replayed":
            return None  # acted on before: acknowledge it again
        logger.warning("shared signal refused (poll): reason=%s err=%s", exc.reason, exc.err)
        return exc
    return None


def poll_once(*, provider: Provider, max_events: int = 100) -> PollResult:
    """Fetch and act on every SET waiting at the transmitter, acknowledging each."""
    row = streams.stream_of(provider)
    if row is None or row.delivery != "poll" or not row.poll_endpoint:
        raise StreamError(
            "no_poll_stream",
            f"Provider {provider.slug} has no poll stream: run ssf_stream create --poll.",
        )
    token = access_token(provider)
    result = PollResult()
    acks: list[str] = []
    errors: dict[str, dict[str, str]] = {}
    for _round in range(MAX_ROUNDS):
        body = {"ack": acks, "setErrs": errors, "maxEvents": max_events, "returnImmediately": True}
        answer = stream_call(provider, "POST", row.poll_endpoint, token=token, json=body)
        acks, errors = [], {}
        sets = answer.get("sets") if isinstance(answer.get("sets"), dict) else {}
        for jti, set_token in sets.items():
            refused = _receive(set_token, provider)
            if refused is None:
                acks.append(jti)
                result.accepted += 1
            else:
                errors[jti] = {"err": refused.err, "description": refused.description}
                result.refused += 1
        result.errors.update(errors)
        if not answer.get("moreAvailable") or not sets:
            break
    if acks or errors:  # the last answer's SETs: acknowledge them without asking for more
        body = {"ack": acks, "setErrs": errors, "maxEvents": 0, "returnImmediately": True}
        stream_call(provider, "POST", row.poll_endpoint, token=token, json=body)
    return result


def poll_quietly(*, provider: Provider) -> None:
    """One poll for ``stream_verify`` waiting on a poll stream; failures are logged."""
    try:
        poll_once(provider=provider)
    except OIDCError as exc:
        logger.warning("poll failed: %s", exc.code)
