"""A scripted OpenID Provider on loopback, for tests about what the site does with answers.

It serves real HTTP on 127.0.0.1 with the payload shapes of OpenID Connect Discovery 1.0,
RFC 7517 (JWKS), RFC 6749 5.1/5.2 (token answers and errors) and OIDC Core 5.3 (userinfo),
so the code under test runs unmodified down to the socket. Each test scripts the answers
and reads back which requests arrived. The integration tests use the real dev IdP instead.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "site-client"
CLIENT_SECRET = "site-secret"

Answer = tuple[int, Any, str]  # status, body (dict or str), content type


@dataclass
class SigningKey:
    """A private key of the fake provider, with the public JWK it publishes."""

    private: Any
    kid: str | None
    alg: str = "RS256"

    @classmethod
    def rsa(cls, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(private=key, kid=kid if kid is not None else uuid.uuid4().hex[:12])

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(private=key, kid=kid or uuid.uuid4().hex[:12], alg="ES256")

    def public_jwk(self) -> dict[str, Any]:
        algo = (
            jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        )
        jwk = json.loads(algo.to_jwk(self.private.public_key()))
        jwk.update({"use": "sig", "alg": self.alg})
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk


@dataclass
class FakeOP:
    """The provider's state: keys, scripted answers, and the log of requests received."""

    base_url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    token_answer: Callable[[dict[str, str]], Answer] | None = None
    userinfo_answer: Callable[[dict[str, str]], Answer] | None = None
    introspection_answer: dict[str, Any] | None = None
    jwks_down: bool = False
    jwks_delay: float = 0.0  # seconds the JWKS endpoint takes to answer
    discovery_down: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    # More documents this provider serves: path -> (method, answer function of the JSON body)
    extra_routes: dict[str, Callable[[Any], Answer]] = field(default_factory=dict)
    # The client registered here (introspection authenticates it).
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    @property
    def issuer(self) -> str:
        return self.base_url

    def reset(self) -> None:
        self.keys = [SigningKey.rsa()]
        self.token_answer = None
        self.userinfo_answer = None
        self.introspection_answer = None
        self.jwks_down = False
        self.jwks_delay = 0.0
        self.discovery_down = False
        self.requests.clear()
        self.forms.clear()
        self.extra_metadata = {}
        self.extra_routes = {}

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    # --- tokens -----------------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "sub-alice",
            "iat": now,
            "exp": now + 300,
            "email": "alice@example.com",
            "email_verified": True,
            "preferred_username": "alice",
            "given_name": "Alice",
            "family_name": "Liddell",
            "groups": ["app-members"],
            "sid": "sid-1",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: SigningKey | None = None,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        secret: str | None = None,
    ) -> str:
        """Sign claims as the provider would; ``secret`` signs with HMAC instead."""
        if secret is not None:
            return jwt.encode(claims, secret, algorithm=alg or "HS256", headers=headers)
        key = key or self.keys[0]
        header = {"kid": key.kid} if key.kid is not None else {}
        header.update(headers or {})
        return jwt.encode(claims, key.private, algorithm=alg or key.alg, headers=header)

    def id_token(self, **overrides: Any) -> str:
        return self.sign(self.claims(**overrides))

    def answer_tokens(self, id_token: str | None = None, **extra: Any) -> None:
        """Script the token endpoint to answer with these tokens."""
        body = {
            "access_token": "at-" + uuid.uuid4().hex,
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": "rt-" + uuid.uuid4().hex,
        }
        if id_token is not None:
            body["id_token"] = id_token
        body.update(extra)
        self.token_answer = lambda form: (200, body, "application/json")

    def answer_introspection(self, **fields: Any) -> None:
        """Script the RFC 7662 answer for any token: active, issued to the site, unless told."""
        answer = {"active": True, "client_id": CLIENT_ID, "sub": "sub-alice", "iss": self.issuer}
        answer.update(fields)
        self.introspection_answer = {k: v for k, v in answer.items() if v is not None}

    def answer_userinfo(
        self, body: dict[str, Any] | str, content_type: str = "application/json"
    ) -> None:
        self.userinfo_answer = lambda headers: (200, body, content_type)

    # --- HTTP ---------------------------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        """The provider's endpoints under their OpenID Connect Discovery names."""
        base = self.base_url
        return {
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/me",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/session/end",
            "introspection_endpoint": f"{base}/introspect",
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            **self.endpoints(),
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            **self.extra_metadata,
        }

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.requests.append((method, path))
        if path == "/.well-known/openid-configuration":
            if self.discovery_down:
                return 503, {"error": "unavailable"}, "application/json"
            return 200, self.metadata(), "application/json"
        if path == "/jwks":
            time.sleep(self.jwks_delay)
            if self.jwks_down:
                return 503, {"error": "unavailable"}, "application/json"
            return 200, {"keys": [k.public_jwk() for k in self.keys]}, "application/json"
        if path == "/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            form["_authorization"] = headers.get("Authorization", "")
            self.forms.append(form)
            if self.token_answer is None:
                return 400, {"error": "invalid_grant"}, "application/json"
            return self.token_answer(form)
        if path == "/introspect" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            form["_authorization"] = headers.get("Authorization", "")
            self.forms.append(form)
            # An assertion is checked by the test that reads ``forms``; a secret here.
            secret_ok = form["_authorization"] == basic_auth_header(
                self.client_id, self.client_secret
            )
            if "client_assertion" not in form and not secret_ok:
                return 401, {"error": "invalid_client"}, "application/json"
            # RFC 7662 2.2: an unknown token is simply inactive.
            return 200, self.introspection_answer or {"active": False}, "application/json"
        if path in self.extra_routes:
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = None
            self.forms.append({"_path": path, "_json": payload})
            return self.extra_routes[path](payload)
        if path == "/me":
            if self.userinfo_answer is None:
                return 401, {"error": "invalid_token"}, "application/json"
            return self.userinfo_answer(headers)
        return 404, {"error": "not_found"}, "application/json"


def basic_auth_header(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def serve(op: FakeOP) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``op`` on a free loopback port in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, content_type = op.handle(
                self.command, urlparse(self.path).path, dict(self.headers), body
            )
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _dispatch

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    op.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
