"""Keycloak's Admin REST API: ``{url}/admin/realms/{realm}/...`` with a client-credentials token.

The client needs a service account with the ``view-users`` role of ``realm-management``.

Subject: the user's ``id``, which is what Keycloak puts in ``sub``.

Groups: each group's ``path`` (``/parent/child``), which is what Keycloak's group
membership mapper puts in the ``groups`` claim with its default "full group path"; the
sign-in mapping drops the leading ``/``. Memberships come from one paged
``/groups/{id}/members`` listing per group (requests grow with groups and members, not with
one ``/users/{id}/groups`` call per user), read before the users; subgroups come from
``subGroups`` or, on Keycloak 23+, from ``/groups/{id}/children``.

Users are paged with ``first``/``max`` and ``briefRepresentation=false`` until an empty
page (a short page is not taken as the end: a server may cap ``max``). Service-account
users (``serviceAccountClientLink``) are not people and are skipped.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from accounts.conf import oidc_settings
from accounts.errors import OIDCError
from accounts.oidc.http import provider_request
from accounts.sync.errors import SourceError, SyncError
from accounts.sync.records import Record, SkippedRecord, record_from_claims
from accounts.sync.tokens import ClientCredentials


def keycloak_claims(user: dict[str, Any], groups: set[str]) -> dict[str, Any]:
    """The claims of a Keycloak ``UserRepresentation``."""
    return {
        "sub": user.get("id"),
        "preferred_username": user.get("username"),
        "email": user.get("email"),
        "email_verified": user.get("emailVerified"),
        "given_name": user.get("firstName"),
        "family_name": user.get("lastName"),
        "groups": sorted(groups),
        "active": user.get("enabled"),
    }


class KeycloakSource:
    """Read the users and group memberships of one Keycloak realm."""

    name = "keycloak"

    def __init__(self, *, url: str, realm: str, tokens: Any, page_size: int) -> None:
        self.base = f"{url.rstrip('/')}/admin/realms/{quote(realm, safe='')}"
        self.tokens, self.page_size = tokens, page_size
        self.total: int | None = None

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.base + path
        try:
            response = provider_request("GET", url, params=params, headers=self._headers())
            if response.status_code == 401 and self.tokens.renewable:
                self.tokens.renew()
                response = provider_request("GET", url, params=params, headers=self._headers())
        except OIDCError as exc:
            raise SourceError(f"Keycloak request failed: GET {path} ({exc.code})") from exc
        if response.status_code != 200:
            raise SourceError(f"Keycloak answered {response.status_code} to GET {path}")
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(f"Keycloak answered non-JSON to GET {path}") from exc

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.token()}", "Accept": "application/json"}

    def _paged(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        first = 0
        while True:
            page = self._get(path, {**params, "first": first, "max": self.page_size})
            if not isinstance(page, list):
                raise SourceError(f"Keycloak answered something other than a list to GET {path}")
            if not page:
                return
            yield from page
            first += len(page)

    def _groups(self, group: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """(id, path) of a group and of all its subgroups."""
        if not isinstance(group.get("id"), str) or not isinstance(group.get("path"), str):
            return
        yield group["id"], group["path"]
        children = group.get("subGroups") or []
        if not children and group.get("subGroupCount"):
            children = self._paged(f"/groups/{quote(group['id'], safe='')}/children")
        for child in children:
            yield from self._groups(child)

    def _memberships(self) -> dict[str, set[str]]:
        members: dict[str, set[str]] = defaultdict(set)
        for top in list(self._paged("/groups", briefRepresentation="false")):
            for group_id, path in list(self._groups(top)):
                path = sys.intern(path)
                listing = f"/groups/{quote(group_id, safe='')}/members"
                for user in self._paged(listing, briefRepresentation="true"):
                    if isinstance(user.get("id"), str):
                        members[user["id"]].add(path)
        return members

    def _record(self, user: Any, groups: dict[str, set[str]], index: int) -> Record:
        if not isinstance(user, dict):
            return SkippedRecord(ref=f"user #{index}", reason="not an object")
        ref = f"user {user['id']}" if isinstance(user.get("id"), str) else f"user #{index}"
        if user.get("serviceAccountClientLink"):
            return SkippedRecord(ref=ref, reason="service account")
        member_of = groups.get(user["id"], set()) if isinstance(user.get("id"), str) else set()
        return record_from_claims(keycloak_claims(user, member_of), ref=ref)

    def records(self) -> Iterator[Record]:
        groups = self._memberships()
        count = self._get("/users/count")
        self.total = count if isinstance(count, int) else None
        for index, user in enumerate(self._paged("/users", briefRepresentation="false"), 1):
            yield self._record(user, groups, index)


def keycloak_source_from_settings(*, page_size: int, provider: Any = None) -> KeycloakSource:
    url, realm = oidc_settings.OIDC_KEYCLOAK_URL, oidc_settings.OIDC_KEYCLOAK_REALM
    if not (url and realm):
        raise SyncError("--source keycloak needs OIDC_KEYCLOAK_URL and OIDC_KEYCLOAK_REALM")
    return KeycloakSource(
        url=url, realm=realm, tokens=ClientCredentials(provider=provider), page_size=page_size
    )
