"""After a revocation event the API refuses the user's access tokens issued before it."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from accounts.models import TokensNotBefore
from accounts.security import shared_cache
from accounts.ssf import events as ev
from accounts.users.not_before import revoke_tokens_before, tokens_not_before
from tests.api.test_access_tokens import access_token
from tests.ssf.sets import AUTHORIZATION, make_set, push
from tests.support.sessions import oidc_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(op, settings):
    settings.OIDC_SSF_PUSH_AUTHORIZATION = AUTHORIZATION
    return oidc_user(issuer=op.issuer, subject="sub-alice", username="alice")


def me(token: str):
    return Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("event", [ev.SESSION_REVOKED, ev.CREDENTIAL_CHANGE, ev.ACCOUNT_DISABLED])
def test_an_unexpired_token_issued_before_the_event_is_refused_in_words(op, alice, event):
    token = access_token(op, iat=int(time.time()) - 5)
    assert me(token).status_code == 200

    assert push(make_set(op, events={event: {}})).status_code == 202

    response = me(token)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_token"
    expected = {"revoked": "before the identity provider ended", "inactive": "deactivated"}
    assert body["reason"] in expected
    assert expected[body["reason"]] in body["message"]


def test_a_token_issued_after_the_event_is_accepted(op, alice):
    assert push(make_set(op)).status_code == 202
    later = access_token(op, iat=int(time.time()) + 2)
    assert me(later).status_code == 200


def test_another_users_tokens_are_untouched(op, alice):
    oidc_user(issuer=op.issuer, subject="sub-bob", username="bob")
    bobs = access_token(op, sub="sub-bob", iat=int(time.time()) - 5)
    assert push(make_set(op)).status_code == 202
    assert me(bobs).status_code == 200


def test_the_not_before_is_in_the_database_and_read_from_the_cache(
    alice, django_assert_num_queries
):
    revoke_tokens_before([alice.pk], 1_000_000.0)
    assert TokensNotBefore.objects.get(user=alice).not_before.timestamp() == 1_000_000.0
    with django_assert_num_queries(0):
        assert tokens_not_before(alice.pk) == 1_000_000.0
    shared_cache.delete(f"oidc:tokens-not-before:{alice.pk}")  # the cache lost it
    with django_assert_num_queries(1):
        assert tokens_not_before(alice.pk) == 1_000_000.0
    with django_assert_num_queries(0):
        assert tokens_not_before(alice.pk) == 1_000_000.0


def test_a_user_without_a_not_before_costs_one_query_then_none(alice, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert tokens_not_before(alice.pk) == 0.0
    with django_assert_num_queries(0):
        assert tokens_not_before(alice.pk) == 0.0
