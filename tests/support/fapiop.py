"""The scripted provider with PAR and DPoP: what a real provider will not do on demand.

``FapiOP`` is ``FakeOP`` plus a pushed authorization request endpoint (``/par``), answers
that carry headers (``DPoP-Nonce``, ``WWW-Authenticate``), and a log of every request's
headers and form, so a test can read the DPoP proofs the site sent. ``fapi_op`` is the
provider ``default`` pointed at it, as ``op`` is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlsplit

import jwt
import pytest

from tests.support.fakeop import CLIENT_ID, CLIENT_SECRET, FakeOP
from tests.support.scripted_signin import USERINFO_CLAIMS, unverified_claims

# (status, body, content type, extra headers)
HeaderAnswer = tuple[int, Any, str, dict[str, str]]


@dataclass
class FapiOP(FakeOP):
    """A scripted provider with ``/par``; ``script[path]`` overrides any endpoint's answer."""

    script: dict[str, Callable[[dict[str, str], dict[str, str]], HeaderAnswer]] = field(
        default_factory=dict
    )
    seen: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    par_answer: HeaderAnswer | None = None

    def reset(self) -> None:
        super().reset()
        self.script = {}
        self.seen.clear()
        self.par_answer = None

    def endpoints(self) -> dict[str, str]:
        return {
            **super().endpoints(),
            "pushed_authorization_request_endpoint": f"{self.base_url}/par",
        }

    def handle_with_headers(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> HeaderAnswer:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()} if body else {}
        self.seen.append((path, dict(headers), form))
        if path in self.script:
            self.requests.append((method, path))
            if path == "/token":
                self.forms.append({**form, "_authorization": headers.get("Authorization", "")})
            return self.script[path](headers, form)
        if path == "/par" and method == "POST":
            self.requests.append((method, path))
            return self.par_answer or (
                201,
                {"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 60},
                "application/json",
                {},
            )
        status, payload, content_type = self.handle(method, path, headers, body)
        return status, payload, content_type, {}

    def proofs(self, path: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(header, claims) of every DPoP proof sent to ``path``, unverified."""
        found = []
        for seen_path, headers, _form in self.seen:
            proof = proof_in(headers)
            if seen_path == path and proof:
                found.append(
                    (
                        jwt.get_unverified_header(proof),
                        jwt.decode(proof, options={"verify_signature": False}),
                    )
                )
        return found

    def seen_at(self, path: str) -> list[tuple[dict[str, str], dict[str, str]]]:
        return [(h, f) for p, h, f in self.seen if p == path]


def serve_fapi(op: FapiOP) -> ThreadingHTTPServer:
    """Serve ``op`` on a free loopback port in a daemon thread, with answer headers."""

    class Handler(BaseHTTPRequestHandler):
        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, content_type, extra = op.handle_with_headers(
                self.command, urlparse(self.path).path, dict(self.headers), body
            )
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _dispatch

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    op.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def _fapi_op_server() -> Iterator[FapiOP]:
    op = FapiOP()
    server = serve_fapi(op)
    yield op
    server.shutdown()


@pytest.fixture
def fapi_op(_fapi_op_server: FapiOP, settings, tmp_path) -> FapiOP:
    """The scripted provider with PAR, as the provider ``default`` (discovery off)."""
    from accounts.oidc import dpop

    op = _fapi_op_server
    op.reset()
    for name, url in op.endpoints().items():
        setting = {
            "authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "token_endpoint": "OIDC_OP_TOKEN_ENDPOINT",
            "userinfo_endpoint": "OIDC_OP_USER_ENDPOINT",
            "jwks_uri": "OIDC_OP_JWKS_ENDPOINT",
            "end_session_endpoint": "OIDC_OP_LOGOUT_ENDPOINT",
            "introspection_endpoint": "OIDC_OP_INTROSPECTION_ENDPOINT",
            "pushed_authorization_request_endpoint": "OIDC_OP_PAR_ENDPOINT",
        }[name]
        setattr(settings, setting, url)
    settings.OIDC_OP_ISSUER = op.base_url
    settings.OIDC_OP_DISCOVERY = False
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_DPOP_KEY_FILE = str(tmp_path / "dpop.pem")
    dpop.forget_key()
    dpop.create_key_file(tmp_path / "dpop.pem")
    yield op
    dpop.forget_key()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start_pushed(client, op: FapiOP, **params: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Start a sign-in; return (the browser's query, the form pushed to ``/par``)."""
    response = client.get("/oidc/authenticate/", params)
    assert response.status_code == 302, response.content.decode()[:800]
    pushed = op.seen_at("/par")
    return query_of(response["Location"]), pushed[-1][1] if pushed else {}


def finish_pushed(client, op: FapiOP, form: dict[str, str], *, answer: bool = True, **claims):
    """Come back to the callback for the pushed ``form``; ``answer``: script the tokens."""
    if answer:
        id_token = op.id_token(nonce=form["nonce"], **claims)
        op.answer_tokens(id_token)
        token_claims = unverified_claims(id_token)
        op.answer_userinfo({k: token_claims[k] for k in USERINFO_CLAIMS if k in token_claims})
    query = urlencode({"code": "c", "state": form["state"], "iss": op.issuer})
    return client.get(f"/oidc/callback/?{query}")


def proof_in(headers: dict[str, str]) -> str:
    """The ``DPoP`` header of a request, whatever the case of its name."""
    return next((v for k, v in headers.items() if k.lower() == "dpop"), "")
