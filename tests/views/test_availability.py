"""availability.py: /readyz names what is down; a database outage answers 503, not 500."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.urls import path

from accounts.oidc import breaker
from accounts.views import availability
from project.urls import urlpatterns as site_urls


def broken_view(request):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


urlpatterns = [*site_urls, path("broken/", broken_view), path("api/broken/", broken_view)]


@pytest.fixture
def outage_urls(settings):
    settings.ROOT_URLCONF = __name__
    availability._last_log.update(at=0.0, count=0)


@pytest.mark.django_db
def test_readyz_answers_ok_with_the_database_and_names_each_check(client, op):
    answer = client.get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["cache"] == "local to this process"
    assert body["providers"] == {"default": "ok"}


@pytest.mark.django_db
def test_readyz_names_a_provider_whose_breaker_is_open_without_failing(client, op):
    for _ in range(3):
        breaker.failure(op.issuer + "/token")
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["providers"] == {"default": "not answering"}
    assert body["degraded_providers"] == ["default"]


@pytest.mark.django_db
def test_readyz_is_503_when_the_shared_cache_is_down(client, op, monkeypatch):
    monkeypatch.setattr(availability, "cache_is_shared", lambda: True)
    monkeypatch.setattr(availability.shared_cache, "ping", lambda: (False, "no answer"))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["down"] == ["cache"]
    assert answer.json()["cache"] == "down: no answer"


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    def dead_cursor(*args, **kwargs):
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(availability.connection, "cursor", dead_cursor)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["down"] == ["database"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_a_database_outage_is_a_503_page_in_words_logged_once(
    client, outage_urls, settings, caplog, debug
):
    settings.DEBUG = debug
    client.raise_request_exception = False
    with caplog.at_level(logging.INFO):
        first = client.get("/broken/")
        second = client.get("/broken/")
    for answer in (first, second):
        assert answer.status_code == 503
        assert answer["Retry-After"] == "5"
        assert b"cannot reach its database" in answer.content
        assert b"Nothing was lost" in answer.content
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in lines] == ["accounts.availability"]
    assert "database unavailable (OperationalError)" in lines[0].getMessage()


@pytest.mark.django_db
def test_a_database_outage_under_api_answers_json(client, outage_urls):
    client.raise_request_exception = False
    answer = client.get("/api/broken/")
    assert answer.status_code == 503
    assert answer.json()["error"] == "database_unavailable"


def test_the_log_filter_drops_only_outage_tracebacks():
    keep = logging.LogRecord("django.request", logging.ERROR, "", 0, "x", (), None)
    try:
        raise OperationalError("down")
    except OperationalError:
        import sys

        drop = logging.LogRecord("django.request", logging.ERROR, "", 0, "x", (), sys.exc_info())
    assert availability.DatabaseOutageLogFilter().filter(keep)
    assert not availability.DatabaseOutageLogFilter().filter(drop)
