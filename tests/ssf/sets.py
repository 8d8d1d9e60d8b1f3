"""Scripted Security Event Tokens for the receiver's tests, signed like a transmitter's."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.test import Client

from accounts.ssf.events import SESSION_REVOKED
from tests.support.fakeop import CLIENT_ID

URL = "/oidc/ssf/push/"
AUTHORIZATION = "Bearer ssf-push-secret-of-the-default-provider"
SET_TYP = {"typ": "secevent+jwt"}
CONTENT_TYPE = "application/secevent+jwt"


def iss_sub(op, sub: str = "sub-alice") -> dict[str, str]:
    return {"format": "iss_sub", "iss": op.issuer, "sub": sub}


def set_claims(op, *, events: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "sub_id": iss_sub(op),
        "events": events if events is not None else {SESSION_REVOKED: {"event_timestamp": now}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def make_set(op, *, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    return op.sign(set_claims(op, **overrides), headers={**SET_TYP, **(headers or {})})


def push(
    body: str | bytes,
    *,
    authorization: str | None = AUTHORIZATION,
    content_type: str = CONTENT_TYPE,
    client: Client | None = None,
):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return (client or Client()).post(URL, data=body, content_type=content_type, **extra)
