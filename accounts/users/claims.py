"""Pure mapping of provider claims onto local user fields, groups and flags.

No ORM and no HTTP here: the same mapping serves sign-in and directory sync, and is tested
with tables of claims.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accounts.providers.provider import ClaimPolicy

USERNAME_MAX_LENGTH = 150
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class UserProfile:
    """What the provider says about a user, in local terms."""

    subject: str
    username: str
    email: str
    email_verified: bool
    first_name: str
    last_name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    is_staff: bool = False
    is_superuser: bool = False

    def user_fields(self) -> dict[str, Any]:
        """The fields of the local user model that follow the provider at every sign-in."""
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "is_staff": self.is_staff or self.is_superuser,
            "is_superuser": self.is_superuser,
        }


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _truthy(value: Any) -> bool:
    # Some providers send "true" as a string (seen with older Cognito and ADFS setups).
    return value is True or (isinstance(value, str) and value.lower() == "true")


def provider_groups(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    """Read the groups claim: a list of names, or one name; Keycloak's paths lose their '/'."""
    raw = claims.get(claim)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, Iterable):
        return frozenset()
    names = (item.strip().lstrip("/") for item in raw if isinstance(item, str))
    return frozenset(name for name in names if name)


def allowed_groups(groups: Iterable[str], policy: ClaimPolicy) -> frozenset[str]:
    """Keep the groups the policy lets the provider manage; none when nothing is configured."""
    return frozenset(
        name
        for name in groups
        if name in policy.groups_allowlist
        or (policy.groups_prefix and name.startswith(policy.groups_prefix))
    )


def exact_subject(value: Any) -> str:
    """The ``sub`` as it must be stored: exactly as sent, or "" when it cannot be.

    A subject is an identifier compared byte for byte (OIDC Core 5.7); trimming or
    truncating it could merge two accounts, so such a value is refused instead.
    """
    if isinstance(value, str) and 0 < len(value) <= 255 and value == value.strip():
        return value
    return ""


def clean_username(value: str) -> str:
    """Turn a claim into a valid Django username (letters, digits and @.+-_ only)."""
    return _USERNAME_UNSAFE.sub("_", value.strip())[:USERNAME_MAX_LENGTH]


def username_candidates(base: str) -> Iterable[str]:
    """Yield ``base``, then ``base-2``, ``base-3``... for resolving a collision."""
    yield base
    for n in range(2, 10_000):
        suffix = f"-{n}"
        yield base[: USERNAME_MAX_LENGTH - len(suffix)] + suffix


def map_claims(claims: Mapping[str, Any], policy: ClaimPolicy) -> UserProfile:
    """Map a claim set (ID token merged with userinfo) onto a ``UserProfile``."""
    subject = exact_subject(claims.get("sub"))
    email = _text(claims.get("email"), 254).lower()
    username = clean_username(_text(claims.get(policy.username_claim), 200))
    if not username:
        username = clean_username(email.split("@")[0]) if email else ""
    if not username:
        username = clean_username(f"user-{subject}")
    first = _text(claims.get("given_name"), 150)
    last = _text(claims.get("family_name"), 150)
    if not (first or last):
        first, _, last = _text(claims.get("name"), 300).partition(" ")
        first, last = first[:150], last.strip()[:150]
    groups = provider_groups(claims, policy.groups_claim)
    return UserProfile(
        subject=subject,
        username=username,
        email=email,
        email_verified=_truthy(claims.get("email_verified")),
        first_name=first,
        last_name=last,
        groups=allowed_groups(groups, policy),
        is_staff=bool(groups & set(policy.staff_groups)),
        is_superuser=bool(groups & set(policy.superuser_groups)),
    )


def field_changes(current: Mapping[str, Any], profile: UserProfile) -> dict[str, Any]:
    """The user fields the profile changes: name -> new value, in ``user_fields`` order.

    ``current`` holds the user's present values (a model's attributes or a row read as
    values); sign-in and directory sync both decide "what changed" here.
    """
    return {
        name: value
        for name, value in profile.user_fields().items()
        if name not in current or current[name] != value
    }


def group_changes(
    current: Iterable[str], wanted: Iterable[str], policy: ClaimPolicy
) -> tuple[set[str], set[str]]:
    """(groups to add, groups to remove) to bring a user's groups in line with the provider.

    Only groups the policy lets the provider manage are ever removed; groups outside it
    (granted locally) stay as they are. ``wanted`` is the profile's already-allowed groups.
    """
    current, wanted = set(current), set(wanted)
    return wanted - current, set(allowed_groups(current, policy)) - wanted
