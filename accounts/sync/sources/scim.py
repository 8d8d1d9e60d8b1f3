"""SCIM 2.0 directory (RFC 7643/7644) read through scim2-client over httpx2.

Subject: ``externalId`` when set, else ``id``. RFC 7643 §3.1 defines ``id`` as the SCIM
server's own identifier and ``externalId`` as "an identifier for the resource as defined
by the provisioning client". When the SCIM directory is fed by the OpenID Provider (Entra
ID, Okta and most IdPs provision this way), that client is the provider and ``externalId``
carries its user id, the ``sub`` of its ID tokens, while ``id`` means nothing to it. When the
SCIM server is the provider's own directory, there is no provisioning client, no
``externalId``, and ``id`` is the provider's identifier. A directory whose records gain an
``externalId`` later would change subjects; ``OIDC_SCIM_SUBJECT_ATTRIBUTE = "id"`` pins
the subject to ``id`` for such directories.

Groups: the ``members`` of every Group (one paged listing, so it scales with memberships,
not with one request per user), plus the user's own ``groups`` attribute where the server
fills it. Nested groups (members of type Group) are not expanded.

Users are paged with ``startIndex``/``count``; each resource is validated alone with the
scim2-models ``User`` (its core attributes only), so one malformed user is skipped and
reported instead of failing its whole page.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx2
from pydantic import ValidationError
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Context, Group, ScimProvider, SearchRequest, User

from accounts.conf import oidc_settings
from accounts.sync.errors import SourceError, SyncError
from accounts.sync.records import MalformedRecord, Record, SkippedRecord, parse_claims
from accounts.sync.tokens import ClientCredentials, StaticToken

CORE_ATTRIBUTES = (
    "id",
    "externalId",
    "userName",
    "name",
    "displayName",
    "emails",
    "active",
    "groups",
)
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class _BearerAuth(httpx2.Auth):
    """Send the bearer token; on a 401, renew it once and send the request again."""

    def __init__(self, tokens: ClientCredentials | StaticToken) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx2.Request) -> Iterator[httpx2.Request]:
        request.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        response = yield request
        if response.status_code == 401 and self.tokens.renewable:
            request.headers["Authorization"] = f"Bearer {self.tokens.renew()}"
            yield request


def scim_subject(resource: User, attribute: str) -> str | None:
    """The subject of a SCIM user: ``externalId`` (default) falling back to ``id``, or ``id``."""
    if attribute == "externalId" and resource.external_id:
        return resource.external_id
    return resource.id


def _email(resource: User) -> str | None:
    emails = [e for e in resource.emails or [] if e.value]
    primary = [e for e in emails if e.primary]
    return str((primary or emails)[0].value) if emails else None


def user_claims(resource: User, groups: set[str], attribute: str) -> dict[str, Any]:
    """The claims of a validated SCIM user (SCIM has no email verification: never verified)."""
    name = resource.name
    own = {g.display for g in resource.groups or [] if g.display}
    return {
        "sub": scim_subject(resource, attribute),
        "preferred_username": resource.user_name,
        "email": _email(resource),
        "given_name": name.given_name if name else None,
        "family_name": name.family_name if name else None,
        "name": resource.display_name,
        "groups": sorted(groups | own),
        "active": resource.active is not False,
    }


class ScimSource:
    """Page through ``/Groups`` then ``/Users`` of a SCIM server."""

    name = "scim"

    def __init__(self, *, url: str, tokens: Any, page_size: int, subject_attribute: str) -> None:
        if subject_attribute not in ("externalId", "id"):
            raise SyncError("OIDC_SCIM_SUBJECT_ATTRIBUTE must be 'externalId' or 'id'")
        self.url, self.tokens, self.page_size = url.rstrip("/"), tokens, page_size
        self.subject_attribute = subject_attribute
        self.total: int | None = None

    def _client(self) -> httpx2.Client:
        return httpx2.Client(
            base_url=self.url,
            auth=_BearerAuth(self.tokens),
            timeout=oidc_settings.OIDC_TIMEOUT,
            verify=oidc_settings.OIDC_VERIFY_SSL,
        )

    def _pages(
        self, scim: SyncSCIMClient, model: type, attributes: list[str] | None = None
    ) -> Iterator[list[Any]]:
        start = 1
        while True:
            query = SearchRequest(start_index=start, count=self.page_size, attributes=attributes)
            try:
                page = scim.query(model, query_parameters=query, check_response_payload=False)
            except SCIMClientException as exc:
                raise SourceError(f"SCIM request failed: {exc}") from exc
            resources, total = _resources(page)
            if model is User:
                self.total = total
            if resources:
                yield resources
            start += len(resources)
            if not resources or start > total:
                return

    def _memberships(self, scim: SyncSCIMClient) -> dict[str, set[str]]:
        members: dict[str, set[str]] = defaultdict(set)
        for page in self._pages(scim, Group, ["displayName", "members"]):
            for group in page:
                name = group.get("displayName") if isinstance(group, dict) else None
                if not isinstance(name, str) or not name:
                    continue
                name = sys.intern(name)
                for member in group.get("members") or []:
                    if _is_user_member(member):
                        members[member["value"]].add(name)
        return members

    def _record(self, raw: Any, groups: dict[str, set[str]], index: int) -> Record:
        if not isinstance(raw, dict):
            return SkippedRecord(ref=f"User #{index}", reason="not an object")
        ref = f"User {raw.get('id')}" if isinstance(raw.get("id"), str) else f"User #{index}"
        core = {key: raw[key] for key in CORE_ATTRIBUTES if key in raw}
        try:
            resource = User.model_validate(
                core | {"schemas": [USER_SCHEMA]}, scim_ctx=Context.RESOURCE_QUERY_RESPONSE
            )
            claims = user_claims(
                resource, groups.get(resource.id or "", set()), self.subject_attribute
            )
            return parse_claims(claims, ref=ref)
        except ValidationError as exc:
            where = ".".join(str(part) for part in exc.errors()[0]["loc"])
            return SkippedRecord(ref=ref, reason=f"invalid SCIM User ({where or 'record'})")
        except MalformedRecord as exc:
            return SkippedRecord(ref=ref, reason=str(exc))

    def records(self) -> Iterator[Record]:
        with self._client() as http:
            scim = SyncSCIMClient(http, provider=ScimProvider(models=[User, Group]))
            groups = self._memberships(scim)
            index = 0
            for page in self._pages(scim, User):
                for raw in page:
                    index += 1
                    yield self._record(raw, groups, index)


def _is_user_member(member: Any) -> bool:
    return (
        isinstance(member, dict)
        and member.get("type", "User") == "User"
        and isinstance(member.get("value"), str)
    )


def _resources(page: Any) -> tuple[list[Any], int]:
    """``Resources`` and ``totalResults`` of a list response; errors become ``SourceError``."""
    if not isinstance(page, dict):
        raise SourceError("the SCIM server answered something other than a list response")
    if ERROR_SCHEMA in (page.get("schemas") or []):
        status, detail = page.get("status"), str(page.get("detail") or "")[:200]
        raise SourceError(f"the SCIM server answered {status}: {detail}")
    resources = page.get("Resources", [])
    total = page.get("totalResults")
    if not isinstance(resources, list) or not isinstance(total, int):
        raise SourceError("the SCIM list response lacks Resources or totalResults")
    return resources, total


def scim_source_from_settings(*, page_size: int, provider: Any = None) -> ScimSource:
    """``OIDC_SCIM_URL`` with ``OIDC_SCIM_TOKEN`` when set, else a client-credentials token."""
    url = oidc_settings.OIDC_SCIM_URL
    if not url:
        raise SyncError("--source scim needs OIDC_SCIM_URL")
    static = oidc_settings.OIDC_SCIM_TOKEN
    tokens = StaticToken(static) if static else ClientCredentials(provider=provider)
    return ScimSource(
        url=url,
        tokens=tokens,
        page_size=page_size,
        subject_attribute=oidc_settings.OIDC_SCIM_SUBJECT_ATTRIBUTE,
    )
