"""Plan the writes for one batch of directory users, reading what exists in a few queries.

A batch costs at most: the identities of its subjects (with their users), the local
accounts to link by email (only when ``OIDC_LINK_BY_EMAIL``), the managed group memberships
of the known users (only when a group policy is configured) and one or two username
look-ups for the new users. Nothing is written here, so a dry run is the plan alone.

A first load (``first_load``: the issuer has no identity yet) skips the identity and
username look-ups: they would find nothing but what the database's unique indexes refuse
anyway (a concurrent first sign-in, a local account holding a username), and on large
tables each is a scan. A refused write plans its batch again with the look-ups, and the
rest of the run with them (``writes.batch_write``). Email links are always looked up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import OIDCIdentity
from accounts.sync.context import SyncContext
from accounts.sync.records import DirectoryUser
from accounts.users.claims import UserProfile, field_changes, group_changes, map_claims
from accounts.users.links import email_links
from accounts.users.usernames import free_usernames

# The user fields sync manages: those sign-in sets from the claims, and ``is_active``.
PROFILE_FIELDS = tuple(UserProfile("", "", "", False, "", "").user_fields())
MANAGED_FIELDS = (*PROFILE_FIELDS, "is_active")


@dataclass
class NewUser:
    subject: str
    profile: UserProfile
    username: str


@dataclass(slots=True)
class Known:
    """A user the directory subject already maps to: read as plain values, not models."""

    identity_id: int | None  # None: an account linked by email in this batch
    identity_email: str
    identity_email_verified: bool
    user_id: int
    username: str
    fields: dict[str, Any]  # MANAGED_FIELDS -> current value


@dataclass
class BatchPlan:
    """The writes of one batch, and what the report will say about them."""

    creates: list[NewUser] = field(default_factory=list)
    new_identities: list[OIDCIdentity] = field(default_factory=list)  # linked by email
    users: list[Any] = field(default_factory=list)  # users with changed fields (pk + fields)
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
    known = _known(list(profiles), ctx) if ctx.look_up_existing else {}
    unknown = [pair for subject, pair in profiles.items() if subject not in known]
    known.update(_email_links(unknown, ctx))
    memberships = _memberships([k.user_id for k in known.values()], ctx)
    new: list[tuple[DirectoryUser, UserProfile]] = []
    for subject, (record, profile) in profiles.items():
        if subject in known:
            user = known[subject]
            _plan_known(plan, user, record, profile, memberships[user.user_id], ctx)
        elif record.active:
            new.append((record, profile))
        else:
            plan.skips.append((record.ref, "inactive in directory, not created"))
    _plan_new(plan, new, ctx)
    return plan


def _known(subjects: list[str], ctx: SyncContext) -> dict[str, Known]:
    """One query: the identities of these subjects with their users' managed fields."""
    username = get_user_model().USERNAME_FIELD
    rows = OIDCIdentity.objects.filter(issuer=ctx.issuer, subject__in=subjects).values_list(
        "pk",
        "subject",
        "email",
        "email_verified",
        "user_id",
        f"user__{username}",
        *(f"user__{name}" for name in MANAGED_FIELDS),
    )
    return {
        row[1]: Known(
            row[0], row[2], row[3], row[4], row[5], dict(zip(MANAGED_FIELDS, row[6:], strict=True))
        )
        for row in rows
    }


def first_load(issuer: str) -> bool:
    """Whether the issuer has no identity yet: the run may plan without look-ups."""
    return not OIDCIdentity.objects.filter(issuer=issuer).exists()


def _email_links(
    unknown: list[tuple[DirectoryUser, UserProfile]], ctx: SyncContext
) -> dict[str, Known]:
    """Local accounts to link to unknown subjects, by the rule of sign-in (``links``)."""
    users = email_links(ctx.issuer, (p for _, p in unknown), enabled=ctx.link_by_email)
    return {
        subject: Known(
            None,
            "",
            False,
            user.pk,
            user.get_username(),
            {name: getattr(user, name) for name in MANAGED_FIELDS},
        )
        for subject, user in users.items()
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
    user: Known,
    record: DirectoryUser,
    profile: UserProfile,
    groups: dict[str, int],
    ctx: SyncContext,
) -> None:
    """An existing (or email-linked) user: compare fields and groups, note what changes.

    The comparisons are sign-in's own (``claims.field_changes`` and ``group_changes``).
    """
    changes = field_changes(user.fields, profile)
    reactivate = ctx.manage_activation and record.active and not user.fields["is_active"]
    if reactivate:
        changes["is_active"] = True
    to_add, to_remove = group_changes(groups, profile.groups, ctx.policy)
    plan.add += [(user.user_id, name) for name in sorted(to_add)]
    plan.remove += [groups[name] for name in sorted(to_remove)]
    if changes:
        plan.users.append(get_user_model()(pk=user.user_id, **{**user.fields, **changes}))
        plan.user_fields |= changes.keys()
    what = sorted(changes) + [f"+{g}" for g in sorted(to_add)]
    what += [f"-{g}" for g in sorted(to_remove)]
    _note_known(plan, user, record.subject, profile, what, ctx)
    if reactivate:
        plan.count("reactivated", f"reactivate {user.username} (sub={record.subject})")
    if ctx.manage_activation and not record.active and user.fields["is_active"]:
        ctx.disabled_user_ids.add(user.user_id)


def _note_known(
    plan: BatchPlan,
    user: Known,
    subject: str,
    profile: UserProfile,
    what: list[str],
    ctx: SyncContext,
) -> None:
    """Link, update or count as unchanged: the identity write and the report line."""
    label = f"{user.username} (sub={subject})"
    if user.identity_id is None:
        plan.new_identities.append(_identity(user, subject, profile, ctx))
        plan.count("linked", f"link {label} by verified email")
    elif (
        what
        or user.identity_email != profile.email
        or user.identity_email_verified != profile.email_verified
    ):
        plan.identities.append(
            OIDCIdentity(
                pk=user.identity_id,
                email=profile.email,
                email_verified=profile.email_verified,
                last_synced_at=ctx.now,
            )
        )
        plan.count("updated", f"update {label}: {', '.join(what) or 'email'}")
    else:
        plan.counts["unchanged"] += 1


def _identity(user: Known, subject: str, profile: UserProfile, ctx: SyncContext) -> OIDCIdentity:
    return OIDCIdentity(
        user_id=user.user_id,
        issuer=ctx.issuer,
        provider=ctx.provider,
        subject=subject,
        email=profile.email,
        email_verified=profile.email_verified,
        last_synced_at=ctx.now,
    )


def _plan_new(
    plan: BatchPlan, new: list[tuple[DirectoryUser, UserProfile]], ctx: SyncContext
) -> None:
    """Users to create, each with a username free in the database and in this run."""
    names = free_usernames(
        [profile.username for _, profile in new],
        ctx.assigned_usernames,
        database=ctx.look_up_existing,
    )
    for (record, profile), username in zip(new, names, strict=True):
        plan.creates.append(NewUser(subject=record.subject, profile=profile, username=username))
        plan.add += [(record.subject, name) for name in sorted(profile.groups)]
        plan.count("created", f"create {username} (sub={record.subject})")
