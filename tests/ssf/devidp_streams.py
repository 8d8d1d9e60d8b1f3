"""Drive the dev IdP's Shared Signals transmitter from tests: streams and demo control."""

from __future__ import annotations

from io import StringIO
from typing import Any

from django.core.management import call_command

from tests.support.signin import new_session


def ssf_stream(*args: str) -> str:
    out = StringIO()
    call_command("ssf_stream", *args, stdout=out)
    return out.getvalue()


def reset_streams(idp) -> None:
    assert new_session().post(f"{idp.issuer}/__dev/ssf/reset", timeout=10).status_code == 200


def control(idp, username: str, action: str) -> dict[str, Any]:
    """``POST /__dev/users/<name>/<action>``: the IdP sends the event before it answers."""
    response = new_session().post(f"{idp.issuer}/__dev/users/{username}/{action}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
