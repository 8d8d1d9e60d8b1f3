"""OIDCSessionMiddleware against the scripted provider: fast path, refresh, and endings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import checks
from django.core.cache import cache, caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import checks as account_checks
from accounts.models import OIDCSession
from accounts.security.locks import LockTimeout
from accounts.sessions import lifecycle as sessions
from accounts.sessions import token_store
from accounts.sessions.refresh import RETRY_INTERVAL, lock_key, session_lock
from tests.support.devidp import free_port
from tests.support.redis import start_redis
from tests.support.sessions import ago, is_signed_in, signed_in_session

MIDDLEWARE = "accounts.sessions.middleware.OIDCSessionMiddleware"
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
JSON = {"HTTP_ACCEPT": "application/json"}


def sign_in(client, op, **kwargs) -> OIDCSession:
    return signed_in_session(client, issuer=op.issuer, **kwargs)


def row_of(client) -> OIDCSession | None:
    return OIDCSession.objects.filter(session_key=client.session.session_key).first()


def assert_sent_to_sign_in(response, next_url: str = "/members/") -> None:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/signin/"
    assert parse_qs(location.query)["next"] == [next_url]


def assert_401_json(response, error: str = "session_ended") -> dict:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["message"]
    assert body["sign_in_url"].startswith("/oidc/authenticate/?next=")
    return body


def refresh_answer(op, **body) -> None:
    """Script a refresh answer with exactly these fields (no defaults)."""
    op.token_answer = lambda form: (200, dict(body), "application/json")


# --- the fast path ---------------------------------------------------------------------


@pytest.mark.django_db
def test_valid_access_token_costs_no_provider_call_and_no_query(
    client, op, django_assert_num_queries
):
    sign_in(client, op, expires_in=3600)
    # Django's own: the session row (SessionMiddleware) and the user (request.user in
    # the template); the middleware adds nothing.
    with django_assert_num_queries(2):
        response = client.get("/members/")
    assert response.status_code == 200
    assert op.count("/token") == 0
    assert op.requests == []


@pytest.mark.django_db
def test_the_same_request_without_the_middleware_makes_the_same_two_queries(
    client, op, settings, django_assert_num_queries
):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    sign_in(client, op, expires_in=3600)
    with django_assert_num_queries(2):
        assert client.get("/members/").status_code == 200


@pytest.mark.django_db
def test_a_session_without_oidc_state_is_left_alone(client, op, django_user_model):
    user = django_user_model.objects.create(username="breakglass")
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    assert client.get("/members/").status_code == 200
    assert op.requests == []


@pytest.mark.django_db
def test_exempt_paths_are_not_refreshed(client, op):
    sign_in(client, op, expires_in=-10)
    assert client.get("/healthz").status_code == 200
    assert op.count("/token") == 0


# --- refresh ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_near_expiry_the_refresh_grant_runs_and_stores_the_rotated_tokens(client, op, settings):
    settings.OIDC_REFRESH_LEEWAY = 60
    sign_in(client, op, expires_in=30, refresh_token="rt-old")
    id_token = op.id_token(sid="sid-2")
    op.answer_tokens(id_token, access_token="at-new", refresh_token="rt-new", expires_in=600)
    before = time.time()

    response = client.get("/members/")

    assert response.status_code == 200
    assert op.count("/token") == 1
    form = op.forms[0]
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "rt-old"
    row = row_of(client)
    assert token_store.read(row, "access_token") == "at-new"
    assert token_store.read(row, "refresh_token") == "rt-new"
    assert token_store.read(row, "id_token") == id_token
    assert row.sid == "sid-2"
    assert row.refreshed_at is not None
    expires = row.access_expires_at.timestamp()
    assert before + 600 <= expires <= time.time() + 600
    assert client.session[sessions.SESSION_EXPIRES_AT] == pytest.approx(expires)
    # Fresh again: the next request is the fast path.
    assert client.get("/members/").status_code == 200
    assert op.count("/token") == 1


@pytest.mark.django_db
def test_an_expired_access_token_is_refreshed_too(client, op):
    sign_in(client, op, expires_in=-120)
    op.answer_tokens(op.id_token())
    assert client.get("/api/me/").status_code == 200
    assert op.count("/token") == 1


@pytest.mark.django_db
def test_a_refresh_answer_without_a_refresh_token_keeps_the_old_one(client, op):
    sign_in(client, op, expires_in=10, refresh_token="rt-keep", id_token="idt-old")
    refresh_answer(op, access_token="at-2", token_type="Bearer", expires_in=300)

    assert client.get("/members/").status_code == 200

    row = row_of(client)
    assert token_store.read(row, "refresh_token") == "rt-keep"
    assert token_store.read(row, "access_token") == "at-2"
    # no ID token in the answer: the old one stays (sealed again under the current key)
    assert token_store.read(row, "id_token") == "idt-old"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("claim", "value"),
    [("sub", "sub-mallory"), ("iss", "http://elsewhere.test"), ("aud", "another-client")],
)
def test_a_refreshed_id_token_about_someone_else_ends_the_session(client, op, claim, value):
    sign_in(client, op, expires_in=10)
    op.answer_tokens(op.id_token(**{claim: value}))

    response = client.get("/members/")

    assert_sent_to_sign_in(response)
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0


# --- invalid_grant -----------------------------------------------------------------------


@pytest.mark.django_db
def test_invalid_grant_signs_a_page_load_out_with_a_message(client, op):
    sign_in(client, op, expires_in=10)
    op.token_answer = lambda form: (400, {"error": "invalid_grant"}, "application/json")

    response = client.get("/members/")

    assert_sent_to_sign_in(response)
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0
    page = client.get(response["Location"])
    assert "Your session has ended at your identity provider" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [XHR, JSON], ids=["xhr", "accept-json"])
def test_invalid_grant_answers_scripts_with_401_json(client, op, headers):
    sign_in(client, op, expires_in=10)

    response = client.get("/members/", **headers)  # no answer scripted: invalid_grant

    body = assert_401_json(response)
    assert body["reason"] == "ended"
    assert body["sign_in_url"] == "/oidc/authenticate/?next=%2Fmembers%2F"
    assert OIDCSession.objects.count() == 0
    assert not is_signed_in(client)


# --- provider down -----------------------------------------------------------------------


@pytest.fixture
def provider_down(op, settings):
    """The token endpoint on a loopback port where nothing listens."""
    settings.OIDC_OP_TOKEN_ENDPOINT = f"http://127.0.0.1:{free_port()}/token"
    settings.OIDC_TIMEOUT = 2
    return op


@pytest.mark.django_db
def test_provider_down_within_grace_serves_the_request_and_keeps_the_session(
    client, provider_down, settings
):
    settings.OIDC_REFRESH_GRACE = 300
    sign_in(client, provider_down, expires_in=10)

    response = client.get("/members/")

    assert response.status_code == 200
    assert is_signed_in(client)
    row = row_of(client)
    assert row is not None
    assert token_store.read(row, "refresh_token") == "rt-1"
    assert timezone.now() - row.provider_unreachable_since < timedelta(seconds=30)
    # The retry is postponed: the next requests do not wait for the provider again.
    due = [
        sessions.refresh_due(
            client.session[sessions.SESSION_EXPIRES_AT],
            client.session[sessions.SESSION_LIFETIME],
            settings.OIDC_REFRESH_LEEWAY,
            moment,
        )
        for moment in (time.time(), time.time() + RETRY_INTERVAL + 1)
    ]
    assert due == [False, True]
    assert client.get("/api/me/").status_code == 200


@pytest.mark.django_db
def test_a_provider_answering_5xx_counts_as_down(client, op):
    sign_in(client, op, expires_in=10)
    op.token_answer = lambda form: (503, "busy", "text/plain")

    assert client.get("/members/").status_code == 200
    assert row_of(client).provider_unreachable_since is not None


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, XHR], ids=["page", "xhr"])
def test_provider_down_past_grace_ends_the_session(client, provider_down, settings, headers):
    settings.OIDC_REFRESH_GRACE = 300
    row = sign_in(client, provider_down, expires_in=10)
    OIDCSession.objects.filter(pk=row.pk).update(provider_unreachable_since=ago(301))

    response = client.get("/members/", **headers)

    if headers:
        assert_401_json(response)
    else:
        assert_sent_to_sign_in(response)
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0


@pytest.mark.django_db
def test_refresh_succeeding_after_an_outage_clears_the_outage(client, op):
    row = sign_in(client, op, expires_in=10)
    OIDCSession.objects.filter(pk=row.pk).update(provider_unreachable_since=ago(60))
    op.answer_tokens(op.id_token())

    assert client.get("/members/").status_code == 200
    assert row_of(client).provider_unreachable_since is None


# --- no refresh token --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, {"HTTP_SEC_FETCH_MODE": "navigate"}])
def test_no_refresh_token_sends_a_page_load_to_silent_sign_in(client, op, headers):
    sign_in(client, op, expires_in=-10, refresh_token="")

    response = client.get("/members/?tab=2", **headers)

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{op.issuer}/auth"
    query = parse_qs(location.query)
    assert query["prompt"] == ["none"]
    assert query["client_id"] == ["site-client"]
    assert query["state"][0] in client.session["oidc_states"]
    assert client.session["oidc_states"][query["state"][0]]["next"] == "/members/?tab=2"
    assert op.count("/token") == 0
    assert is_signed_in(client)  # kept until the provider answers


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("post", {}),
        ("get", XHR),
        ("get", JSON),
        ("get", {"HTTP_SEC_FETCH_MODE": "cors"}),
    ],
    ids=["post", "xhr", "accept-json", "fetch"],
)
def test_no_refresh_token_answers_anything_but_a_page_load_with_401(client, op, method, headers):
    sign_in(client, op, expires_in=-10, refresh_token="")

    response = getattr(client, method)("/members/", **headers)

    body = assert_401_json(response, error="reauth_required")
    assert body["reason"] == "no_refresh_token"
    assert "Location" not in response
    assert is_signed_in(client)
    assert row_of(client) is not None


@pytest.mark.django_db
def test_silent_sign_in_refused_with_login_required_signs_out(client, op):
    sign_in(client, op, expires_in=-10, refresh_token="")
    redirect = client.get("/members/")
    state = parse_qs(urlsplit(redirect["Location"]).query)["state"][0]

    response = client.get(f"/oidc/callback/?error=login_required&state={state}")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/signin/"  # the message is seen before the IdP
    assert "Your session has ended" in client.get("/accounts/signin/").content.decode()
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0  # its tokens are gone too
    assert op.count("/token") == 0
    assert client.get("/members/").status_code == 302  # login_required, no loop


# --- absolute lifetime -------------------------------------------------------------------


@pytest.mark.django_db
def test_past_the_maximum_session_age_the_user_is_signed_out_with_a_message(client, op, settings):
    settings.OIDC_SESSION_MAX_AGE = 3600
    sign_in(client, op, expires_in=3600, started_ago=3601)

    response = client.get("/members/")

    assert_sent_to_sign_in(response)
    assert not is_signed_in(client)
    assert OIDCSession.objects.count() == 0
    assert op.count("/token") == 0
    page = client.get(response["Location"])
    assert "Your session reached its maximum length" in page.content.decode()


@pytest.mark.django_db
def test_past_the_maximum_session_age_a_script_gets_401(client, op, settings):
    settings.OIDC_SESSION_MAX_AGE = 3600
    sign_in(client, op, expires_in=3600, started_ago=3601)

    body = assert_401_json(client.get("/api/me/"))
    assert body["reason"] == "max_age"
    assert OIDCSession.objects.count() == 0


@pytest.mark.django_db
def test_within_the_maximum_session_age_nothing_happens(client, op, settings):
    settings.OIDC_SESSION_MAX_AGE = 3600
    sign_in(client, op, expires_in=3600, started_ago=3500)
    assert client.get("/members/").status_code == 200


# --- the lock on a shared cache ------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway redis-server on loopback, without persistence."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def redis_cache(redis_url, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
        }
    }
    settings.OIDC_REFRESH_LOCK_TIMEOUT = 5
    cache.clear()
    yield
    cache.clear()


def test_session_lock_uses_the_shared_cache_and_a_second_holder_waits(redis_cache):
    # No database access here: with a shared cache the lock must not touch the database.
    key = lock_key("session-a")
    assert "session-a" not in key  # a session key never appears in the shared cache
    events: list[tuple[str, float]] = []
    first_in = threading.Event()
    seen_in_cache: list[object] = []

    def first() -> None:
        with session_lock("session-a"):
            events.append(("first in", time.monotonic()))
            first_in.set()
            seen_in_cache.append(cache.get(key))
            time.sleep(0.4)
            events.append(("first out", time.monotonic()))

    def second() -> None:
        first_in.wait(5)
        with session_lock("session-a"):
            events.append(("second in", time.monotonic()))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert [name for name, _ in events] == ["first in", "first out", "second in"]
    assert events[2][1] - events[0][1] >= 0.35
    assert isinstance(seen_in_cache[0], str)  # the holder's token, in redis
    assert cache.get(key) is None  # released


def test_session_locks_of_different_sessions_do_not_wait_for_each_other(redis_cache):
    with session_lock("session-a"):
        started = time.monotonic()
        with session_lock("session-b"):
            pass
    assert time.monotonic() - started < 0.2


@pytest.mark.django_db(transaction=True)
def test_without_a_shared_cache_session_lock_is_an_advisory_lock_on_postgresql(settings):
    """No transaction is held while the provider answers, and a second holder waits."""
    assert type(caches["default"]).__name__ == "LocMemCache"
    assert connection.vendor == "postgresql"
    settings.OIDC_REFRESH_LOCK_TIMEOUT = 0.3
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with session_lock("session-a"):
            held.set()
            release.wait(5)
        connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with CaptureQueriesContext(connection) as queries:
            with pytest.raises(LockTimeout), session_lock("session-a"):
                pass  # pragma: no cover - the lock is held by the other thread
            with session_lock("session-b"):  # another session: its own lock
                assert not connection.in_atomic_block
        assert any("pg_try_advisory_lock" in q["sql"] for q in queries)
        assert cache.get(lock_key("session-a")) is None
    finally:
        release.set()
        thread.join(5)
    with session_lock("session-a"):  # released by its holder
        pass


# --- system check --------------------------------------------------------------------------


def test_signed_cookie_sessions_yield_exactly_the_w002_warning(settings, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.DEBUG = True  # keeps W001 (a local cache in production) out of the picture
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

    expected = checks.Warning(
        "Sessions are stored in signed cookies: back-channel logout and end_sessions "
        "cannot end them.",
        hint="Use a server-side session engine (db, cached_db or cache).",
        id="accounts.W002",
    )
    assert account_checks.check_cache_and_sessions() == [expected]
    assert checks.run_checks(tags=[checks.Tags.caches]) == [expected]


@pytest.mark.parametrize(
    "engine",
    [
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.cache",
    ],
)
def test_server_side_sessions_yield_no_w002(settings, monkeypatch, engine):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.DEBUG = True
    settings.SESSION_ENGINE = engine
    assert account_checks.check_cache_and_sessions() == []


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, XHR], ids=["page", "xhr"])
def test_no_refresh_token_and_discovery_down_is_never_a_500(client, op, settings, headers):
    sign_in(client, op, expires_in=-10, refresh_token="")
    settings.OIDC_OP_ISSUER = f"http://127.0.0.1:{free_port()}"
    settings.OIDC_OP_DISCOVERY = True
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS", "LOGOUT"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", "")

    response = client.get("/members/", **headers)

    assert response.status_code == (401 if headers else 200)
    assert is_signed_in(client)
