"""Plan the writes for one batch of directory users, reading what exists in a few queries.

A batch costs at most: the identities of its subjects (with their users), the local
accounts to link by email (only when ``OIDC_LINK_BY_EMAIL``), the managed group memberships
of the known users (only when a group policy is configured) and one or two username
look-ups for the new users. Nothing is written here, so a dry run is the plan alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from ..claims import UserProfile, allowed_groups, map_claims
from ..models import OIDCIdentity
from .context import SyncContext
from .records import DirectoryUser
from .usernames import usernames_allocate


@dataclass
class NewUser:
    subject: str
    profile: UserProfile
    username: str


@dataclass
class BatchPlan:
    """The writes of one batch, and what the report will say about them."""

    creates: list[NewUser] = field(default_factory=list)
    new_identities: list[OIDCIdentity] = field(default_factory=list)  # linked by email
    users: list[Any] = field(default_factory=list)  # users with changed fields
    user_fields: set[str] = field(default_factory=set)
    identities: list[OIDCIdentity] = field(default_factory=list)  # identities to touch
    add: list[tuple[int | str, str]] = field(default_factory=list)  # (user id or subject, group)
    remove: list[int] = field(default_factory=list)  # ids of through-table rows
    counts: Counter[str] = field(default_factory=Counter)
    skips: list[tuple[str, str]] = field(default_factory=list)
    examples: list[tuple[str, str]] = field(default_factory=list)

    def count(self, action: str, text: str) -> None:
        self.counts[action] += 1
        self.examples.append((action, text))


def batch_plan(batch: list[DirectoryUser], ctx: SyncContext) -> BatchPlan:
    """Decide what to create, update, link and queue for deactivation in this batch."""
    plan = BatchPlan()
    profiles = {record.subject: (record, map_claims(record.claims, ctx.policy)) for record in batch}
    identities = {
        identity.subject: identity
        for identity in OIDCIdentity.objects.select_related("user").filter(
            issuer=ctx.issuer, subject__in=list(profiles)
        )
    }
    unknown = [
        (record, profile) for subject, (record, profile) in profiles.items()
        if subject not in identities
    ]
    identities.update(_email_links(unknown, ctx))
    memberships = _memberships([identity.user_id for identity in identities.values()], ctx)
    new: list[tuple[DirectoryUser, UserProfile]] = []
    for subject, (record, profile) in profiles.items():
        identity = identities.get(subject)
        if identity is not None:
            _plan_known(plan, identity, record, profile, memberships[identity.user_id], ctx)
        elif record.active:
            new.append((record, profile))
        else:
            plan.skips.append((record.ref, "inactive in directory, not created"))
    _plan_new(plan, new, ctx)
    return plan


def _email_links(
    unknown: list[tuple[DirectoryUser, UserProfile]], ctx: SyncContext
) -> dict[str, OIDCIdentity]:
    """Unsaved identities for unknown subjects whose verified email names one local account.

    The same rule as sign-in (``OIDC_LINK_BY_EMAIL``): only a provider-verified email, only
    an account not linked to this issuer yet, only when exactly one account matches.
    """
    wanted: dict[str, list[str]] = defaultdict(list)
    for record, profile in unknown:
        if profile.email and profile.email_verified:
            wanted[profile.email].append(record.subject)
    if not (ctx.link_by_email and wanted):
        return {}
    matches: dict[str, list[Any]] = defaultdict(list)
    users = (
        get_user_model()
        .objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=list(wanted))
        .exclude(oidc_identities__issuer=ctx.issuer)
    )
    for user in users:
        matches[user.email_lower].append(user)
    return {
        subjects[0]: OIDCIdentity(user=matches[email][0], issuer=ctx.issuer, subject=subjects[0])
        for email, subjects in wanted.items()
        if len(matches[email]) == 1 and len(subjects) == 1
    }


def _memberships(user_ids: list[int], ctx: SyncContext) -> dict[int, dict[str, int]]:
    """For each user: the name of each group they are in -> the id of the through-table row."""
    result: dict[int, dict[str, int]] = defaultdict(dict)
    if not (user_ids and ctx.manages_groups):
        return result
    through = get_user_model().groups.through
    rows = through.objects.filter(user_id__in=user_ids).values_list("pk", "user_id", "group__name")
    for pk, user_id, name in rows:
        result[user_id][name] = pk
    return result


def _plan_known(
    plan: BatchPlan,
    identity: OIDCIdentity,
    record: DirectoryUser,
    profile: UserProfile,
    groups: dict[str, int],
    ctx: SyncContext,
) -> None:
    """An existing (or email-linked) user: compare fields and groups, note what changes."""
    user = identity.user
    fields = profile.user_fields()
    reactivate = ctx.manage_activation and record.active and not user.is_active
    if reactivate:
        fields["is_active"] = True
    changed = {name for name, value in fields.items() if getattr(user, name) != value}
    managed = allowed_groups(groups, ctx.policy)
    to_add = profile.groups - set(groups)
    to_remove = managed - profile.groups
    plan.add += [(user.pk, name) for name in sorted(to_add)]
    plan.remove += [groups[name] for name in sorted(to_remove)]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        plan.users.append(user)
        plan.user_fields |= changed
    label = f"{user.get_username()} (sub={record.subject})"
    if identity.pk is None:
        identity.email, identity.last_synced_at = profile.email, ctx.now
        plan.new_identities.append(identity)
        plan.count("linked", f"link {label} by verified email")
    elif changed or to_add or to_remove or identity.email != profile.email:
        identity.email, identity.last_synced_at = profile.email, ctx.now
        plan.identities.append(identity)
        what = sorted(changed) + [f"+{g}" for g in sorted(to_add)] + [f"-{g}" for g in sorted(to_remove)]
        plan.count("updated", f"update {label}: {', '.join(what) or 'email'}")
    else:
        plan.counts["unchanged"] += 1
    if reactivate:
        plan.count("reactivated", f"reactivate {label}")
    if ctx.manage_activation and not record.active and user.is_active:
        ctx.disabled_user_ids.add(user.pk)


def _plan_new(
    plan: BatchPlan, new: list[tuple[DirectoryUser, UserProfile]], ctx: SyncContext
) -> None:
    """Users to create, each with a username free in the database and in this run."""
    names = usernames_allocate(bases=[profile.username for _, profile in new], ctx=ctx)
    for (record, profile), username in zip(new, names, strict=True):
        plan.creates.append(NewUser(subject=record.subject, profile=profile, username=username))
        plan.add += [(record.subject, name) for name in sorted(profile.groups)]
        plan.count("created", f"create {username} (sub={record.subject})")
