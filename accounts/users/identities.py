"""Services that turn a validated claim set into a local user, through (issuer, subject)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import AccountError
from accounts.models import OIDCIdentity
from accounts.providers.provider import ClaimPolicy, Provider
from accounts.providers.registry import default_provider
from accounts.users.claims import UserProfile, field_changes, group_changes, map_claims
from accounts.users.links import email_links
from accounts.users.usernames import free_usernames

logger = logging.getLogger("accounts.identities")  # the name operators filter on, kept across moves


def unique_username(base: str) -> str:
    """Return ``base`` or the first free ``base-N`` (the allocator directory sync uses too)."""
    return free_usernames([base], set())[0]


def _link_by_email(
    issuer: str, profile: UserProfile, enabled: bool | None = None
) -> AbstractBaseUser | None:
    """Find an existing local account to link, only for a provider-verified email.

    The rule is ``sync.links.email_links``, shared with directory sync; ``enabled`` is the
    provider's ``link_by_email`` (the default provider's when not given).
    """
    if enabled is None:
        enabled = default_provider().link_by_email
    user = email_links(issuer, [profile], enabled=enabled).get(profile.subject)
    if user is not None:
        logger.info(
            "linking existing user by verified email: iss=%s sub=%s", issuer, profile.subject
        )
    return user


def new_user(profile: UserProfile, *, username: str) -> AbstractBaseUser:
    """An unsaved user for this profile, with no usable password.

    They only ever sign in through the provider. Sign-in saves it; directory sync creates
    a batch of them with one ``bulk_create``. The unusable password is what
    ``set_unusable_password`` stores, without its slow per-character random string.
    """
    User = get_user_model()
    user = User(**profile.user_fields())
    setattr(user, User.USERNAME_FIELD, username)
    user.password = UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)
    return user


def create_user(profile: UserProfile) -> AbstractBaseUser:
    """Create a user with no usable password: they only ever sign in through the provider."""
    user = new_user(profile, username=unique_username(profile.username))
    user.save()
    return user


def apply_profile(user: AbstractBaseUser, profile: UserProfile, policy: ClaimPolicy) -> bool:
    """Bring the user's fields and managed groups in line with the provider; True if changed."""
    current = {name: getattr(user, name) for name in profile.user_fields()}
    changed = field_changes(current, profile)
    for name, value in changed.items():
        setattr(user, name, value)
    if changed:
        user.save(update_fields=list(changed))
    return bool(changed) | set_managed_groups(user, profile.groups, policy)


def set_managed_groups(user: AbstractBaseUser, wanted: Iterable[str], policy: ClaimPolicy) -> bool:
    """Set the groups the provider manages; groups outside the policy stay as they are."""
    current = set(user.groups.values_list("name", flat=True))
    to_add, to_remove = group_changes(current, wanted, policy)
    if to_remove:
        user.groups.remove(*Group.objects.filter(name__in=to_remove))
    if to_add:
        existing = {g.name: g for g in Group.objects.filter(name__in=to_add)}
        for name in to_add - existing.keys():
            existing[name], _ = Group.objects.get_or_create(name=name)
        user.groups.add(*existing.values())
    return bool(to_remove or to_add)


def _find_identity(issuer: str, subject: str, provider: Provider) -> OIDCIdentity | None:
    """The identity of (issuer, subject) created through this provider, and no other's.

    A provider that claims another's issuer (refused by the checks and the admin, but a
    second line here) finds nothing, and its first sign-in then fails on the unique
    (issuer, subject) constraint instead of taking over the account.
    """
    # Unique on (issuer, subject): no ORDER BY needed (``first()`` would add one).
    found = OIDCIdentity.objects.select_related("user").filter(
        issuer=issuer, subject=subject, provider=provider.slug
    )
    return next(iter(found[:1]), None)


def _first_identity(issuer: str, profile: UserProfile, provider: Provider) -> OIDCIdentity:
    """Link or create the user of a first sign-in.

    Two first sign-ins of one subject can race (a double click, two tabs): the loser's
    insert fails on a unique constraint, and it then finds the winner's identity, or
    retries once with a fresh username when only the username collided.
    """
    for _attempt in range(2):
        try:
            with transaction.atomic():
                user = _link_by_email(issuer, profile, provider.link_by_email)
                if user is None:
                    if not provider.create_user:
                        raise AccountError(
                            "not_provisioned",
                            "You signed in at the identity provider, but you have no account "
                            "on this site yet. Ask an administrator to give you access.",
                        )
                    user = create_user(profile)
                return OIDCIdentity.objects.create(
                    user=user, issuer=issuer, subject=profile.subject, provider=provider.slug
                )
        except IntegrityError:
            identity = _find_identity(issuer, profile.subject, provider)
            if identity is not None:
                return identity
            if OIDCIdentity.objects.filter(issuer=issuer, subject=profile.subject).exists():
                logger.error(
                    "refused: provider %s vouched for iss=%s sub=%s, an identity of another "
                    "provider",
                    provider.slug,
                    issuer,
                    profile.subject,
                )
                raise AccountError(
                    "identity_of_another_provider",
                    "This account belongs to another identity provider of this site.",
                ) from None
    raise AccountError("account_conflict", "Your account could not be set up. Please try again.")


@transaction.atomic
def resolve_user(
    *,
    issuer: str,
    claims: dict[str, Any],
    policy: ClaimPolicy | None = None,
    provider: Provider | None = None,
):
    """Find (or create, or link) the user for these claims and apply the claim mapping.

    Users are found by (issuer, subject) only; the provider says how claims map and
    whether a new subject may be created or linked by email. Raises ``AccountError`` when
    the account is not provisioned here or is deactivated.
    """
    provider = provider or default_provider()
    policy = policy or provider.policy
    profile = map_claims(claims, policy)
    if not profile.subject:
        raise AccountError("missing_sub", "The identity provider did not say who you are.")
    identity = _find_identity(issuer, profile.subject, provider) or _first_identity(
        issuer, profile, provider
    )
    user = identity.user
    if not user.is_active:
        raise AccountError("inactive", "Your account on this site is deactivated.")
    apply_profile(user, profile, policy)
    identity.email = profile.email
    identity.email_verified = profile.email_verified  # a Shared Signals email subject needs it
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["email", "email_verified", "last_login_at"])
    return user


def user_for_subject(
    *, issuer: str, claims: dict[str, Any], provider: Provider | None = None
) -> AbstractBaseUser:
    """The active user of (issuer, ``sub``) for an access token, created when allowed.

    A first call creates the user like a first sign-in (same rules: the provider's
    ``create_user`` and ``link_by_email``), with the fields the token carries; the next
    sign-in or sync completes them. An existing user's fields and groups are left alone:
    access tokens rarely carry the claims sign-in maps, and their absence must not strip
    anything.
    """
    provider = provider or default_provider()
    identity = _find_identity(issuer, str(claims["sub"]), provider)
    if identity is None:
        profile = map_claims(claims, provider.policy)
        with transaction.atomic():
            identity = _first_identity(issuer, profile, provider)
    if not identity.user.is_active:
        raise AccountError("inactive", "This access token belongs to a deactivated account.")
    return identity.user
