"""The provider admin shows each Shared Signals stream's status and last event."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import SignalStream

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def test_the_provider_list_shows_each_streams_status_and_last_event(operator):
    stream = SignalStream(
        provider="default",
        stream_id="s-1",
        status="enabled",
        events_received=3,
        last_event_type="https://schemas.openid.net/secevent/caep/event-type/session-revoked",
        last_event_at=timezone.now(),
    )
    stream.set_authorization("Bearer never-shown")
    stream.save()

    page = operator.get("/admin/accounts/oidcprovider/").content.decode()

    assert 'id="signal-streams"' in page
    assert "session-revoked" in page and "enabled" in page
    assert "never-shown" not in page

    detail = operator.get(f"/admin/accounts/signalstream/{stream.pk}/change/").content.decode()
    assert "set (stored encrypted)" in detail
    assert "never-shown" not in detail
    assert operator.get("/admin/accounts/signalstream/add/").status_code == 403
