"""Provider calls read the environment's proxy settings once per process, and still obey them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.errors import ProviderError
from accounts.oidc import http


class RecordingProxy(BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself and remembers its request line."""

    seen: list[str] = []

    def do_GET(self) -> None:
        RecordingProxy.seen.append(self.path)
        body = json.dumps({"via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RecordingProxy.seen = []
    http._proxies.cache_clear()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
    yield RecordingProxy.seen
    http._proxies.cache_clear()
    server.shutdown()


def test_a_proxy_from_the_environment_carries_provider_calls(proxy, monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert http.get_json("http://provider.invalid/.well-known/x") == {"via": "proxy"}
    assert http.get_json("http://provider.invalid/jwks") == {"via": "proxy"}

    assert proxy == ["http://provider.invalid/.well-known/x", "http://provider.invalid/jwks"]
    assert http._proxies.cache_info().hits >= 1  # the environment was read once for the origin


def test_no_proxy_sends_that_origin_directly(proxy, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "direct.invalid")

    with pytest.raises(ProviderError, match="provider_unreachable"):
        http.get_json("http://direct.invalid/.well-known/x")  # no such host, and no proxy

    assert proxy == []
