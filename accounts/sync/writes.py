"""Carry out a batch plan in one transaction, with bulk statements only.

A batch either lands whole or not at all, so a run killed half-way keeps every batch it
committed and a re-run finds those users unchanged and goes on (the sync is idempotent).

Sign-in goes on while a run writes: a first sign-in can create the identity (or take the
username) of a user the plan was about to create, between the planning and the writing.
The insert then fails on a unique constraint; ``batch_write`` rolls the batch back to its
savepoint, plans it again (that user is now known) and writes it once more.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.models import OIDCIdentity
from accounts.sync.context import SyncContext
from accounts.sync.plan import BatchPlan, batch_plan
from accounts.sync.records import DirectoryUser
from accounts.users.identities import new_user

logger = logging.getLogger(__name__)


def batch_write(batch: list[DirectoryUser], plan: BatchPlan, ctx: SyncContext) -> BatchPlan:
    """Write the batch's plan; on a conflict with a concurrent sign-in, re-plan and retry once.

    During a first load (planned without look-ups) the conflict may also be an account that
    existed before the run: the batch, and the rest of the run, are then planned with them.

    Returns the plan that was written, whose counts the report must use. A second conflict
    in a row is not a race any more and goes up as the ``IntegrityError`` it is.
    """
    group_ids = dict(ctx.group_ids)
    try:
        plan_apply(plan, ctx)
        return plan
    except IntegrityError as exc:
        if ctx.look_up_existing:
            logger.info("sync batch conflicted with a concurrent write (%s); planning again", exc)
        else:
            logger.info(
                "first load met an existing identity or username (%s); planning this batch "
                "and the next ones with look-ups",
                exc,
            )
    ctx.group_ids = group_ids  # groups created in the rolled-back savepoint are gone
    ctx.assigned_usernames.clear()  # the batch's names: none of them was written
    ctx.look_up_existing = True  # the earlier batches' names are found in the database
    plan = batch_plan(batch, ctx)
    plan_apply(plan, ctx)
    return plan


def plan_apply(plan: BatchPlan, ctx: SyncContext) -> None:
    """Write one batch atomically: new users and identities, changed users, group memberships."""
    User = get_user_model()
    with transaction.atomic():
        users = [new_user(new.profile, username=new.username) for new in plan.creates]
        User.objects.bulk_create(users)
        user_ids = {new.subject: user.pk for new, user in zip(plan.creates, users, strict=True)}
        identities = [
            OIDCIdentity(
                user_id=user_ids[new.subject],
                issuer=ctx.issuer,
                provider=ctx.provider,
                subject=new.subject,
                email=new.profile.email,
                email_verified=new.profile.email_verified,
                last_synced_at=ctx.now,
            )
            for new in plan.creates
        ]
        OIDCIdentity.objects.bulk_create(identities + plan.new_identities)
        if plan.users:
            User.objects.bulk_update(plan.users, sorted(plan.user_fields))
        if plan.identities:
            OIDCIdentity.objects.bulk_update(
                plan.identities, ["email", "email_verified", "last_synced_at"]
            )
        _apply_groups(plan, user_ids, ctx)


def _group_ids(names: set[str], ctx: SyncContext) -> dict[str, int]:
    """Ids of these groups, creating the missing ones; cached for the rest of the run."""
    missing = names - ctx.group_ids.keys()
    if missing:
        found = dict(Group.objects.filter(name__in=missing).values_list("name", "pk"))
        if missing - found.keys():
            Group.objects.bulk_create(
                [Group(name=name) for name in missing - found.keys()], ignore_conflicts=True
            )
            found = dict(Group.objects.filter(name__in=missing).values_list("name", "pk"))
        ctx.group_ids.update(found)
    return {name: ctx.group_ids[name] for name in names}


def _apply_groups(plan: BatchPlan, user_ids: dict[str, int], ctx: SyncContext) -> None:
    through = get_user_model().groups.through
    if plan.remove:
        through.objects.filter(pk__in=plan.remove).delete()
    if not plan.add:
        return
    ids = _group_ids({name for _, name in plan.add}, ctx)
    rows = [
        through(user_id=user_ids.get(user, user), group_id=ids[name]) for user, name in plan.add
    ]
    through.objects.bulk_create(rows, ignore_conflicts=True)
