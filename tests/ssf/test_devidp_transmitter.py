"""The site and the dev IdP's Shared Signals transmitter, end to end (no browser).

Stream management with ``ssf_stream`` (create, verify, status, update, delete), push
delivery of the dev IdP's demo control events, and poll delivery with ``ssf_poll``.
"""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import OIDCSession, SignalDeactivation, SignalStream
from tests.ssf.devidp_streams import control, reset_streams, ssf_stream
from tests.support.api_client import user_access_token
from tests.support.signin import login_form_action, new_session, sign_in_with_requests

pytestmark = [pytest.mark.devidp, pytest.mark.django_db(transaction=True)]

User = get_user_model()


@pytest.fixture
def transmitter(idp_site, live_server):
    reset_streams(idp_site)
    yield idp_site
    reset_streams(idp_site)


@pytest.fixture
def push_stream(transmitter, live_server):
    ssf_stream("create", "--site-url", live_server.url)
    return transmitter


def me(live_server, http=None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return (http or new_session()).get(f"{live_server.url}/api/me/", headers=headers, timeout=10)


def sign_in_page(live_server, username: str):
    """The site's last answer of a sign-in at the dev IdP, whatever it is."""
    http = new_session()
    form = http.get(f"{live_server.url}/oidc/authenticate/", timeout=10)
    action = login_form_action(form)
    assert action, form.text[:300]
    return http.post(action, data={"username": username, "password": username}, timeout=10)


def test_stream_create_verify_status_update_and_delete(transmitter, live_server):
    output = ssf_stream("create", "--site-url", live_server.url)
    row = SignalStream.objects.get(provider="default")
    assert f"Stream {row.stream_id} of default: push delivery." in output
    assert row.authorization.startswith("Bearer ") and len(row.authorization) > 40
    assert row.authorization not in row.authorization_encrypted  # stored encrypted
    assert "session-revoked" in output and "account-disabled" in output

    assert "Verified: the event arrived after" in ssf_stream("verify")
    row.refresh_from_db()
    assert row.last_verification_at is not None

    status = ssf_stream("status")
    assert f"Stream {row.stream_id} of default: enabled" in status
    assert "verification" in status  # the last event

    old = row.authorization
    ssf_stream("update", "--site-url", live_server.url)
    row.refresh_from_db()
    assert row.authorization != old
    assert "Verified" in ssf_stream("verify")  # the transmitter sends the new value

    assert "deleted" in ssf_stream("delete")
    assert not SignalStream.objects.exists()
    with pytest.raises(CommandError, match="no stream yet"):
        ssf_stream("status")


def test_a_second_create_is_refused_in_words(push_stream, live_server):
    with pytest.raises(CommandError, match=r"refused .*409: this client already has a stream"):
        ssf_stream("create", "--site-url", live_server.url)


def test_revoke_sessions_at_the_provider_ends_the_sites_session(push_stream, live_server):
    http = sign_in_with_requests(live_server.url, "alice")
    other = sign_in_with_requests(live_server.url, "staff")
    assert me(live_server, http).status_code == 200

    answer = control(push_stream, "alice", "revoke-sessions")

    assert answer["streams"][0]["result"] == 202
    assert me(live_server, http).status_code == 401
    assert me(live_server, other).status_code == 200
    assert not OIDCSession.objects.filter(user__username="alice").exists()


def test_account_disabled_blocks_sign_in_and_bearer_and_enabled_restores(push_stream, live_server):
    http = sign_in_with_requests(live_server.url, "alice")
    token = user_access_token(push_stream, "alice")
    assert me(live_server, token=token).status_code == 200

    control(push_stream, "alice", "disable")

    assert me(live_server, http).status_code == 401
    refused = me(live_server, token=token)
    assert refused.status_code == 401
    assert "deactivated" in refused.json()["message"]
    alice = User.objects.get(username="alice")
    assert not alice.is_active
    assert SignalDeactivation.objects.filter(user=alice).exists()
    refused_page = sign_in_page(live_server, "alice")
    assert refused_page.status_code == 403
    assert "Your account on this site is deactivated." in refused_page.text

    control(push_stream, "alice", "enable")

    assert User.objects.get(username="alice").is_active
    again = sign_in_with_requests(live_server.url, "alice")
    assert me(live_server, again).json()["username"] == "alice"
    # The token issued before the disabling stays refused; a new one works.
    assert me(live_server, token=token).json()["reason"] == "revoked"
    # iat has whole seconds: a token of the disabling's own second is refused too.
    time.sleep(1.1)
    assert me(live_server, token=user_access_token(push_stream, "alice")).status_code == 200


def test_poll_delivery_processes_the_same_events_and_acknowledges_them(transmitter, live_server):
    output = ssf_stream("create", "--poll")
    assert "poll delivery" in output
    http = sign_in_with_requests(live_server.url, "alice")

    assert control(transmitter, "alice", "revoke-sessions")["streams"][0]["result"] == "queued"
    assert me(live_server, http).status_code == 200  # nothing pushed: waits for the poll

    out = StringIO()
    call_command("ssf_poll", stdout=out)
    assert "Acted on 1 SET(s), refused 0." in out.getvalue()
    assert me(live_server, http).status_code == 401

    out = StringIO()
    call_command("ssf_poll", stdout=out)
    assert "Acted on 0 SET(s)" in out.getvalue()  # acknowledged: not delivered again
    assert "Verified" in ssf_stream("verify", "--poll")
