"""What a directory source yields: a user in claim names, or a record it had to skip.

Every source turns its own format into the claim names of OpenID Connect (``sub``,
``preferred_username``, ``email``, ``email_verified``, ``given_name``, ``family_name``,
``groups``) plus ``active``, so that the sign-in mapping (``map_claims``) serves sync as
well. A malformed record becomes a ``SkippedRecord`` with a reason, never an exception:
one bad entry in a directory of thousands must not stop a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUBJECT_MAX_LENGTH = 255
_SPACE = re.compile(r"\s")  # what str.isspace() calls whitespace, found in one C loop
_STRING_CLAIMS = ("preferred_username", "email", "given_name", "family_name", "name")


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One user as the directory describes them. ``ref`` names the record in reports."""

    ref: str
    claims: Mapping[str, Any]
    active: bool = True

    @property
    def subject(self) -> str:
        return self.claims["sub"]


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record the source could not use, and why (no personal data beyond identifiers)."""

    ref: str
    reason: str


Record = DirectoryUser | SkippedRecord


class MalformedRecord(ValueError):
    """Raised inside parsers; turned into a ``SkippedRecord`` by ``record_from_claims``."""


def _check_subject(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecord("missing sub")
    if len(value) > SUBJECT_MAX_LENGTH or value != value.strip():
        raise MalformedRecord("invalid sub")
    return value


def _check_types(data: Mapping[str, Any]) -> None:
    for name in _STRING_CLAIMS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise MalformedRecord(f"{name} is not a string")
    email = data.get("email")
    if email and ("@" not in email or _SPACE.search(email) or len(email) > 254):
        raise MalformedRecord("invalid email")
    groups = data.get("groups")
    if groups is not None and not (
        isinstance(groups, list) and all(isinstance(g, str) for g in groups)
    ):
        raise MalformedRecord("groups is not a list of strings")
    for flag in ("email_verified", "active"):
        if data.get(flag) is not None and not isinstance(data[flag], bool):
            raise MalformedRecord(f"{flag} is not a boolean")


def parse_claims(data: Any, *, ref: str) -> DirectoryUser:
    """Check a claims-like object and return the user; raise ``MalformedRecord``."""
    if not isinstance(data, Mapping):
        raise MalformedRecord("not an object")
    _check_subject(data.get("sub"))
    _check_types(data)
    active = data.get("active")
    claims = {key: value for key, value in data.items() if key != "active" and value is not None}
    return DirectoryUser(ref=ref, claims=claims, active=True if active is None else active)


def record_from_claims(data: Any, *, ref: str) -> Record:
    """Like ``parse_claims``, but a malformed object becomes a ``SkippedRecord``."""
    try:
        return parse_claims(data, ref=ref)
    except MalformedRecord as exc:
        return SkippedRecord(ref=ref, reason=str(exc))
