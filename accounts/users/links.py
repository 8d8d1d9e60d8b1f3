"""Linking a new subject to an existing local account by email: the one rule for sign-in and sync.

``OIDC_LINK_BY_EMAIL`` lets a first sign-in (``identities._link_by_email``) or a directory
sync (``plan``) attach an identity to an account that exists already, instead of creating
a second account for the same person. Because whoever controls the email would get the
account, the rule is strict: only an email the provider says it verified, only an account
not linked to this issuer yet, and only when exactly one account has that email and only
one of the subjects being linked claims it. One query serves any number of subjects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models.functions import Lower

from accounts.users.claims import UserProfile


def linkable_email(profile: UserProfile) -> str:
    """The email to look an account up by, or "" when the provider did not verify it."""
    return profile.email if profile.email and profile.email_verified else ""


def email_links(
    issuer: str, profiles: Iterable[UserProfile], *, enabled: bool
) -> dict[str, AbstractBaseUser]:
    """The local account each of these (unlinked) subjects may be linked to: subject -> user.

    ``enabled`` is ``OIDC_LINK_BY_EMAIL``; subjects without a match are left out. Emails
    compare case-insensitively (profiles carry them lower-cased).
    """
    if not enabled:
        return {}
    wanted: dict[str, list[str]] = defaultdict(list)
    for profile in profiles:
        if email := linkable_email(profile):
            wanted[email].append(profile.subject)
    if not wanted:
        return {}
    users = (
        get_user_model()
        .objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=list(wanted))
        .exclude(oidc_identities__issuer=issuer)
    )
    matches: dict[str, list[AbstractBaseUser]] = defaultdict(list)
    for user in users:
        matches[user.email_lower].append(user)
    return {
        subjects[0]: matches[email][0]
        for email, subjects in wanted.items()
        if len(subjects) == 1 and len(matches[email]) == 1
    }
