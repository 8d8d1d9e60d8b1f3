"""Services that turn a validated claim set into a local user, through (issuer, subject)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from .claims import (
    USERNAME_MAX_LENGTH,
    ClaimPolicy,
    UserProfile,
    allowed_groups,
    map_claims,
    username_candidates,
)
from .conf import oidc_settings
from .errors import AccountError
from .models import OIDCIdentity

logger = logging.getLogger(__name__)


def unique_username(base: str) -> str:
    """Return ``base`` or the first free ``base-N``."""
    User = get_user_model()
    field = User.USERNAME_FIELD
    # Long bases are cut to make room for the suffix: look up the shortest prefix used.
    prefix = base[: USERNAME_MAX_LENGTH - len("-9999")]
    taken = set(
        User.objects.filter(**{f"{field}__startswith": prefix}).values_list(field, flat=True)
    )
    for candidate in username_candidates(base):
        if candidate not in taken:
            return candidate
    raise AccountError("username_exhausted", "No free username could be found for you.")


def _link_by_email(issuer: str, profile: UserProfile) -> AbstractBaseUser | None:
    """Find an existing local account to link, only for a provider-verified email."""
    if not (oidc_settings.OIDC_LINK_BY_EMAIL and profile.email and profile.email_verified):
        return None
    User = get_user_model()
    users = list(
        User.objects.filter(email__iexact=profile.email).exclude(oidc_identities__issuer=issuer)[:2]
    )
    if len(users) != 1:
        return None
    logger.info("linking existing user by verified email: iss=%s sub=%s", issuer, profile.subject)
    return users[0]


def create_user(profile: UserProfile) -> AbstractBaseUser:
    """Create a user with no usable password: they only ever sign in through the provider."""
    User = get_user_model()
    user = User(**{User.USERNAME_FIELD: unique_username(profile.username)})
    user.set_unusable_password()
    for name, value in profile.user_fields().items():
        setattr(user, name, value)
    user.save()
    return user


def apply_profile(user: AbstractBaseUser, profile: UserProfile, policy: ClaimPolicy) -> bool:
    """Bring the user's fields and managed groups in line with the provider; True if changed."""
    fields = profile.user_fields()
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        user.save(update_fields=changed)
    return bool(changed) | set_managed_groups(user, profile.groups, policy)


def set_managed_groups(user: AbstractBaseUser, wanted: Iterable[str], policy: ClaimPolicy) -> bool:
    """Set the groups the provider manages; groups outside the policy stay as they are."""
    wanted = set(wanted)
    current = set(user.groups.values_list("name", flat=True))
    managed = allowed_groups(current, policy)
    to_remove = managed - wanted
    to_add = wanted - current
    if to_remove:
        user.groups.remove(*Group.objects.filter(name__in=to_remove))
    if to_add:
        existing = {g.name: g for g in Group.objects.filter(name__in=to_add)}
        for name in to_add - existing.keys():
            existing[name], _ = Group.objects.get_or_create(name=name)
        user.groups.add(*existing.values())
    return bool(to_remove or to_add)


def _find_identity(issuer: str, subject: str) -> OIDCIdentity | None:
    return (
        OIDCIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    )


def _first_identity(issuer: str, profile: UserProfile) -> OIDCIdentity:
    """Link or create the user of a first sign-in.

    Two first sign-ins of one subject can race (a double click, two tabs): the loser's
    insert fails on a unique constraint, and it then finds the winner's identity, or
    retries once with a fresh username when only the username collided.
    """
    for _attempt in range(2):
        try:
            with transaction.atomic():
                user = _link_by_email(issuer, profile)
                if user is None:
                    if not oidc_settings.OIDC_CREATE_USER:
                        raise AccountError(
                            "not_provisioned",
                            "You signed in at the identity provider, but you have no account "
                            "on this site yet. Ask an administrator to give you access.",
                        )
                    user = create_user(profile)
                return OIDCIdentity.objects.create(
                    user=user, issuer=issuer, subject=profile.subject
                )
        except IntegrityError:
            identity = _find_identity(issuer, profile.subject)
            if identity is not None:
                return identity
    raise AccountError("account_conflict", "Your account could not be set up. Please try again.")


@transaction.atomic
def resolve_user(*, issuer: str, claims: dict[str, Any], policy: ClaimPolicy | None = None):
    """Find (or create, or link) the user for these claims and apply the claim mapping.

    Users are found by (issuer, subject) only. Raises ``AccountError`` when the account
    is not provisioned here or is deactivated.
    """
    policy = policy or ClaimPolicy.from_settings()
    profile = map_claims(claims, policy)
    if not profile.subject:
        raise AccountError("missing_sub", "The identity provider did not say who you are.")
    identity = _find_identity(issuer, profile.subject) or _first_identity(issuer, profile)
    user = identity.user
    if not user.is_active:
        raise AccountError("inactive", "Your account on this site is deactivated.")
    apply_profile(user, profile, policy)
    identity.email = profile.email
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["email", "last_login_at"])
    return user
