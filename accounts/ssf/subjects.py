"""Whom a Security Event Token names: RFC 9493 subject identifiers, at one provider only.

Formats read: ``iss_sub`` (its ``iss`` must be the provider's), ``opaque`` (the ``id`` is
the provider's ``sub``), ``email`` (identities of that provider whose email it verified),
``aliases``, and the complex form (SSF 1.0 section 3.2: ``user`` and ``session`` members;
a ``session`` is the provider's ``sid``). The SSF ``sub_id`` claim is read first, else the
older per-event ``subject`` member. A subject only ever matches identities whose issuer is
the provider's, so a user known only through another provider is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import OIDCIdentity
from accounts.providers.provider import Provider

MAX_ALIASES = 10


@dataclass(frozen=True)
class Target:
    """The local users (and the one session, when named) a subject stands for."""

    user_ids: frozenset[int] = frozenset()
    sid: str = ""  # a session subject: only that session of the provider
    label: str = ""  # the subject in words for the audit row: a sub or an email
    users: tuple[Any, ...] = ()  # the user objects, when the lookup loaded them

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.sid)


def subject_of(claims: dict[str, Any], event: dict[str, Any]) -> Any:
    """SSF 1.0's ``sub_id``, else the ``subject`` member of the event (CAEP/RISC drafts)."""
    return claims.get("sub_id") if claims.get("sub_id") is not None else event.get("subject")


def _text(value: Any) -> str:
    return value[:255] if isinstance(value, str) else ""


def _identities(provider: Provider, label: str, **lookup: Any) -> Target:
    rows = OIDCIdentity.objects.filter(issuer=provider.issuer, **lookup).select_related("user")
    users = tuple(row.user for row in rows)
    return Target(frozenset(u.pk for u in users), label=label, users=users)


def _simple(subject: dict[str, Any], provider: Provider) -> Target:
    fmt = subject.get("format")
    if fmt == "iss_sub":
        sub = _text(subject.get("sub"))
        if subject.get("iss") != provider.issuer or not sub:
            return Target(label=sub)
        return _identities(provider, sub, subject=sub)
    if fmt == "opaque":
        sub = _text(subject.get("id"))
        return _identities(provider, sub, subject=sub) if sub else Target()
    if fmt == "email":
        email = _text(subject.get("email")).strip()
        if "@" not in email:
            return Target(label="")
        return _identities(provider, email, email__iexact=email, email_verified=True)
    if fmt == "aliases":
        found = [
            resolve(alias, provider)
            for alias in (subject.get("identifiers") or [])[:MAX_ALIASES]
            if isinstance(alias, dict) and alias.get("format") != "aliases"
        ]
        users = tuple({u.pk: u for t in found for u in t.users}.values())
        label = next((t.label for t in found if t.label), "")
        return Target(frozenset(u.pk for u in users), label=label, users=users)
    return Target()


def _session_id(session: Any) -> str:
    if not isinstance(session, dict):
        return ""
    return _text(session.get("id") or session.get("sid") or session.get("sub"))


def resolve(subject: Any, provider: Provider) -> Target:
    """The target of one subject identifier at ``provider`` (empty: nobody here)."""
    if not isinstance(subject, dict):
        return Target()
    if subject.get("format") == "complex" or "user" in subject or "session" in subject:
        user = resolve(subject["user"], provider) if isinstance(subject.get("user"), dict) else None
        sid = _session_id(subject.get("session"))
        if user is not None and not user.user_ids:
            return Target(label=user.label)  # a named user who is not ours: nothing to do
        if user is None:
            return Target(sid=sid, label=sid)
        return Target(user.user_ids, sid=sid, label=user.label, users=user.users)
    return _simple(subject, provider)
