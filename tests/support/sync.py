"""Directories for the sync tests: a real SCIM server, a Keycloak admin API, in-memory sources.

- ``ScimServer``: scim2-server's WSGI application on a loopback port, in a thread, with its
  own in-memory storage; seeded through its SCIM API (``add_user``, ``add_group``).
- ``FakeKeycloak``: ``http.server`` answering the Admin REST API paths the sync reads, with
  JSON shaped like Keycloak's ``UserRepresentation`` and ``GroupRepresentation``.
- ``ListSource``: records from a list, optionally failing after N of them (a run "killed"
  half-way).

Fixtures ``scim_server``, ``keycloak`` and ``directory_tokens`` (the scripted provider issues
client-credentials tokens that both directories accept): import ``<name>_fixture`` into a
test module to use them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx2
import pytest
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.testserver.cli import ThreadingWSGIServer
from scim2_server.utils import load_default_provider

from accounts.sync.records import Record, record_from_claims

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
REALM = "corp"


def person(sub: str, **overrides: Any) -> dict[str, Any]:
    """A claims-like directory record (the JSON-lines format)."""
    name = overrides.pop("username", sub)
    record = {
        "sub": sub,
        "preferred_username": name,
        "email": f"{name}@example.org",
        "email_verified": True,
        "given_name": name.title(),
        "family_name": "Example",
        "groups": ["app-members"],
        "active": True,
    }
    record.update(overrides)
    return record


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records (dicts, or raw strings for broken lines) as a JSON-lines file."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class ListSource:
    """An in-memory directory; ``fail_after`` raises after that many records."""

    items: list[dict[str, Any]]
    fail_after: int | None = None
    name: str = "list"
    total: int | None = None

    def records(self) -> Iterator[Record]:
        self.total = len(self.items)
        for index, item in enumerate(self.items):
            if self.fail_after is not None and index == self.fail_after:
                raise ConnectionError("directory connection reset")
            yield record_from_claims(item, ref=f"item {index + 1}")


# --- SCIM ----------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _Breakable:
    """WSGI middleware around the SCIM server, counting the pages of users it serves.

    After ``fail_after`` pages it answers 503 (a server dying half-way); after
    ``revoke_after`` pages it forgets every token but the seeding one (tokens expiring).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fail_after: int | None = None
        self.revoke_after: int | None = None
        self.user_pages = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").endswith("/Users") and environ["REQUEST_METHOD"] == "GET":
            if self.revoke_after is not None and self.user_pages == self.revoke_after:
                self.revoke_after = None
                tokens = self.app.bearer_tokens
                keep = {t for t in tokens if t.startswith("seed-")}
                tokens.clear()
                tokens.update(keep)
            self.user_pages += 1
            if self.fail_after is not None and self.user_pages > self.fail_after:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"down"]
        return self.app(environ, start_response)


@dataclass
class ScimServer:
    """A running scim2-server on 127.0.0.1 that accepts the bearer tokens in ``tokens``."""

    url: str
    tokens: set[str]
    app: BearerTokenApplication
    middleware: _Breakable
    server: Any
    seed_token: str = field(default_factory=lambda: "seed-" + uuid.uuid4().hex)

    def _http(self) -> httpx2.Client:
        headers = {"Authorization": f"Bearer {self.seed_token}"}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=10)

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._http() as http:
            response = http.request(method, path, json=body)
        assert response.status_code in (200, 201, 204), response.text
        return response.json() if response.content else {}

    def add_user(self, user_name: str, **attributes: Any) -> str:
        """Create a user through the SCIM API; return its ``id``."""
        body = {"schemas": [USER_SCHEMA], "userName": user_name, "active": True}
        body.setdefault("emails", [{"value": f"{user_name}@example.org", "primary": True}])
        body.update(attributes)
        return self._send("POST", "/Users", body)["id"]

    def replace_user(self, user_id: str, user_name: str, **attributes: Any) -> None:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        self._send("PUT", f"/Users/{user_id}", body)

    def delete_user(self, user_id: str) -> None:
        self._send("DELETE", f"/Users/{user_id}")

    def add_group(self, name: str, member_ids: list[str]) -> str:
        members = [{"value": member, "type": "User"} for member in member_ids]
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}
        return self._send("POST", "/Groups", body)["id"]

    def set_members(self, group_id: str, name: str, member_ids: list[str]) -> None:
        members = [{"value": member, "type": "User"} for member in member_ids]
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}
        self._send("PUT", f"/Groups/{group_id}", body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_scim_server() -> ScimServer:
    tokens: set[str] = set()
    app = BearerTokenApplication(InMemoryStorage(), load_default_provider(), bearer_tokens=())
    app.bearer_tokens = tokens  # shared: tests add and revoke tokens while it runs
    middleware = _Breakable(app)
    server = make_server(
        "127.0.0.1", 0, middleware, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scim = ScimServer(
        url=f"http://127.0.0.1:{server.server_port}/v2",
        tokens=tokens,
        app=app,
        middleware=middleware,
        server=server,
    )
    tokens.add(scim.seed_token)
    return scim


@pytest.fixture(name="scim_server")
def scim_server_fixture(settings) -> Iterator[ScimServer]:
    """A fresh SCIM server; the site reads it with a static token (``OIDC_SCIM_TOKEN``)."""
    server = start_scim_server()
    site_token = "site-" + uuid.uuid4().hex
    server.tokens.add(site_token)
    settings.OIDC_SCIM_URL = server.url
    settings.OIDC_SCIM_TOKEN = site_token
    yield server
    server.stop()


# --- Keycloak -------------------------------------------------------------------------------


@dataclass
class FakeKeycloak:
    """The admin API of one realm: users, groups (with subgroups) and memberships."""

    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # top-level, with "children"
    members: dict[str, list[str]] = field(default_factory=dict)  # group id -> user ids
    tokens: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    expire_after: int | None = None  # forget every token after this many requests
    base_url: str = ""

    def add_user(self, username: str, **fields: Any) -> str:
        """A ``UserRepresentation`` as ``GET /users?briefRepresentation=false`` returns it."""
        user = {
            "id": str(uuid.uuid4()),
            "username": username,
            "firstName": username.title(),
            "lastName": "Example",
            "email": f"{username}@example.org",
            "emailVerified": True,
            "attributes": {"department": ["R&D"]},
            "createdTimestamp": int(time.time() * 1000),
            "enabled": True,
            "totp": False,
            "disableableCredentialTypes": [],
            "requiredActions": [],
            "notBefore": 0,
            "access": {
                "manageGroupMembership": True,
                "view": True,
                "mapRoles": True,
                "impersonate": False,
                "manage": True,
            },
        }
        user.update(fields)
        self.users.append(user)
        return user["id"]

    def add_group(
        self, name: str, member_ids: list[str], parent: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A ``GroupRepresentation``; subgroups are listed through ``/children`` (Keycloak 23+)."""
        path = f"{parent['path']}/{name}" if parent else f"/{name}"
        group = {
            "id": str(uuid.uuid4()),
            "name": name,
            "path": path,
            "subGroupCount": 0,
            "subGroups": [],
            "attributes": {},
            "realmRoles": [],
            "clientRoles": {},
            "access": {"view": True, "manage": True, "manageMembership": True},
            "children": [],
        }
        if parent:
            group["parentId"] = parent["id"]
            parent["children"].append(group)
            parent["subGroupCount"] = len(parent["children"])
        else:
            self.groups.append(group)
        self.members[group["id"]] = list(member_ids)
        return group

    def _all_groups(self) -> Iterator[dict[str, Any]]:
        stack = list(self.groups)
        while stack:
            group = stack.pop()
            stack.extend(group["children"])
            yield group

    @staticmethod
    def _public(group: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in group.items() if k != "children"}

    def handle(self, path: str, query: dict[str, str], headers: Any) -> tuple[int, Any]:
        self.requests.append(path)
        if self.expire_after is not None and len(self.requests) > self.expire_after:
            self.expire_after = None
            self.tokens.clear()
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, {"error": "HTTP 401 Unauthorized"}
        prefix = f"/admin/realms/{REALM}"
        if not path.startswith(prefix):
            return 404, {"error": "Realm not found."}
        rest = path[len(prefix) :].strip("/").split("/")
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        page = slice(first, first + size)
        by_id = {g["id"]: g for g in self._all_groups()}
        if rest == ["users", "count"]:
            return 200, len(self.users)
        if rest == ["users"]:
            return 200, self.users[page]
        if rest == ["groups"]:
            return 200, [self._public(g) for g in self.groups][page]
        if len(rest) == 3 and rest[0] == "groups" and rest[1] in by_id:
            group = by_id[rest[1]]
            if rest[2] == "children":
                return 200, [self._public(g) for g in group["children"]][page]
            if rest[2] == "members":
                users = {u["id"]: u for u in self.users}
                listed = [users[i] for i in self.members[group["id"]] if i in users]
                return 200, listed[page]
        return 404, {"error": "Could not find resource"}


def serve_keycloak(keycloak: FakeKeycloak) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, payload = keycloak.handle(url.path, query, self.headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    keycloak.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(name="directory_tokens")
def directory_tokens_fixture(op) -> set[str]:
    """The scripted provider answers client-credentials grants with fresh tokens, kept here."""
    issued: set[str] = set()

    def answer(form: dict[str, str]) -> tuple[int, Any, str]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, "application/json"
        token = "cc-" + uuid.uuid4().hex
        issued.add(token)
        return (
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": 300},
            "application/json",
        )

    op.token_answer = answer
    return issued


@pytest.fixture(name="keycloak")
def keycloak_fixture(settings, directory_tokens) -> Iterator[FakeKeycloak]:
    """A fake Keycloak realm that accepts the provider's client-credentials tokens."""
    fake = FakeKeycloak(tokens=directory_tokens)
    server = serve_keycloak(fake)
    settings.OIDC_KEYCLOAK_URL = fake.base_url
    settings.OIDC_KEYCLOAK_REALM = REALM
    yield fake
    server.shutdown()
    server.server_close()
