"""Managing this site's stream at the provider's transmitter (SSF 1.0 section 8).

One service per stream operation, for ``manage.py ssf_stream``: ``stream_create`` registers
push delivery to this site's receiver (``/oidc/ssf/push/``) with a fresh ``Authorization``
value (stored encrypted on the ``SignalStream`` row) and the events ``events.ACTED_ON``, or
poll delivery; ``stream_verify`` asks for a verification event and waits until it arrived.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from accounts.models import SignalStream
from accounts.providers.provider import Provider
from accounts.ssf import streams
from accounts.ssf.events import ACTED_ON
from accounts.ssf.transmitter import StreamError, access_token, metadata_endpoint, stream_call

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
PUSH_PATH = "/oidc/ssf/push/"


def _delivery(*, poll: bool, site_url: str, authorization: str) -> dict[str, Any]:
    if poll:
        return {"method": POLL}
    if not site_url.startswith(("https://", "http://")):
        raise StreamError("site_url_missing", "Push delivery needs this site's URL (--site-url).")
    return {
        "method": PUSH,
        "endpoint_url": site_url.rstrip("/") + PUSH_PATH,
        "authorization_header": authorization,
    }


def _saved(provider: Provider, answer: dict[str, Any], **fields: Any) -> SignalStream:
    delivery = answer.get("delivery") if isinstance(answer.get("delivery"), dict) else {}
    poll = delivery.get("method") == POLL
    return streams.save_stream(
        provider,
        stream_id=str(answer.get("stream_id") or "")[:255],
        delivery="poll" if poll else "push",
        poll_endpoint=str(delivery.get("endpoint_url") or "")[:500] if poll else "",
        events_delivered=[e for e in answer.get("events_delivered") or [] if isinstance(e, str)],
        **fields,
    )


def _row(provider: Provider) -> SignalStream:
    row = streams.stream_of(provider)
    if row is None or not row.stream_id:
        raise StreamError(
            "no_stream", f"Provider {provider.slug} has no stream yet: run ssf_stream create."
        )
    return row


def stream_create(*, provider: Provider, site_url: str = "", poll: bool = False) -> SignalStream:
    """Create the stream: push to this site's receiver (or poll), the events acted on."""
    authorization = "" if poll else f"Bearer {secrets.token_urlsafe(32)}"
    body = {
        "delivery": _delivery(poll=poll, site_url=site_url, authorization=authorization),
        "events_requested": list(ACTED_ON),
        "description": "Sign-out and account events for this site",
    }
    token = access_token(provider)
    answer = stream_call(
        provider,
        "POST",
        metadata_endpoint(provider, "configuration_endpoint"),
        token=token,
        json=body,
    )
    return _saved(provider, answer, status="enabled", authorization=authorization)


def stream_update(*, provider: Provider, site_url: str = "", poll: bool = False) -> SignalStream:
    """Replace the delivery and events (a new ``Authorization`` value for push)."""
    row = _row(provider)
    authorization = "" if poll else f"Bearer {secrets.token_urlsafe(32)}"
    body = {
        "stream_id": row.stream_id,
        "delivery": _delivery(poll=poll, site_url=site_url, authorization=authorization),
        "events_requested": list(ACTED_ON),
    }
    url = metadata_endpoint(provider, "configuration_endpoint")
    answer = stream_call(provider, "PATCH", url, token=access_token(provider), json=body)
    return _saved(provider, answer, authorization=authorization)


def stream_status(*, provider: Provider) -> SignalStream:
    """Ask the transmitter for the stream's status and configuration; remember both."""
    row = _row(provider)
    token = access_token(provider)
    params = {"stream_id": row.stream_id}
    status = stream_call(
        provider, "GET", metadata_endpoint(provider, "status_endpoint"), token=token, params=params
    )
    answer = stream_call(
        provider,
        "GET",
        metadata_endpoint(provider, "configuration_endpoint"),
        token=token,
        params=params,
    )
    return _saved(provider, answer, status=str(status.get("status") or "")[:32])


def stream_delete(*, provider: Provider) -> None:
    """Delete the stream at the transmitter and forget it (pushes with its value are refused)."""
    row = _row(provider)
    url = metadata_endpoint(provider, "configuration_endpoint")
    stream_call(
        provider, "DELETE", url, token=access_token(provider), params={"stream_id": row.stream_id}
    )
    row.delete()


def stream_verify(
    *,
    provider: Provider,
    timeout: float = 10.0,
    receive: Callable[[], Any] | None = None,
) -> float:
    """Request a verification event and wait until it was received; return the seconds it took.

    ``receive`` fetches events while waiting (a poll stream); a push stream's events arrive
    at the receiver by themselves.
    """
    row = _row(provider)
    state = secrets.token_urlsafe(16)
    started = time.monotonic()
    stream_call(
        provider,
        "POST",
        metadata_endpoint(provider, "verification_endpoint"),
        token=access_token(provider),
        json={"stream_id": row.stream_id, "state": state},
    )
    while time.monotonic() - started < timeout:
        if receive is not None:
            receive()
        if SignalStream.objects.filter(pk=row.pk, last_verification_state=state).exists():
            return time.monotonic() - started
        time.sleep(0.1)
    raise StreamError(
        "verification_timeout",
        f"The verification event did not arrive within {timeout:.0f} s: check that the "
        "transmitter can reach this site's /oidc/ssf/push/ (or poll with ssf_poll).",
    )
