"""The last phase of a run with ``--deactivate-missing``: who goes, the safety stop, the writes.

It runs only once the whole directory has been read: a run that failed half-way never
deactivates anyone. Users are deactivated when the directory no longer lists their subject
or lists them as disabled; only users linked to the run's issuer are ever considered, so
local accounts (break-glass administrators) are never touched. If the run would deactivate
more than ``OIDC_SYNC_MAX_DEACTIVATE_RATIO`` of the active linked users, it stops unless
forced: an empty or truncated directory answer must not lock everyone out.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.audit.log import DEACTIVATED
from accounts.conf import oidc_settings
from accounts.models import OIDCIdentity
from accounts.sessions.lifecycle import end_user_sessions
from accounts.sync.context import SyncContext
from accounts.sync.errors import SyncAborted
from accounts.sync.report import SyncReport


def _targets(ctx: SyncContext) -> tuple[list[int], int, set[int]]:
    """(users to deactivate, number of active linked users, those missing from the directory)."""
    active: set[int] = set()
    listed: set[int] = set()
    rows = (
        OIDCIdentity.objects.filter(issuer=ctx.issuer, user__is_active=True)
        .values_list("subject", "user_id")
        .iterator(chunk_size=10_000)
    )
    for subject, user_id in rows:
        active.add(user_id)
        if subject in ctx.seen:
            listed.add(user_id)
    missing = active - listed
    targets = sorted(missing | (ctx.disabled_user_ids & active))
    return targets, len(active), missing


def safety_check(*, count: int, active: int, force: bool, ratio: float | None = None) -> None:
    """Refuse to deactivate more than the allowed share of the active users, unless forced."""
    ratio = oidc_settings.OIDC_SYNC_MAX_DEACTIVATE_RATIO if ratio is None else ratio
    if force or count == 0 or count <= ratio * active:
        return
    raise SyncAborted(
        f"refusing to deactivate {count} of {active} active users ({count / active:.0%}, "
        f"more than OIDC_SYNC_MAX_DEACTIVATE_RATIO={ratio:.0%}); check the directory's "
        "answer, or run again with --force"
    )


def _note_examples(targets: list[int], missing: set[int], report: SyncReport) -> None:
    User = get_user_model()
    sample = User.objects.filter(pk__in=targets[:20]).order_by(User.USERNAME_FIELD)
    for user in sample:
        why = "missing from directory" if user.pk in missing else "disabled in directory"
        report.note("deactivated", f"deactivate {user.get_username()} ({why})")


def deactivation_run(*, ctx: SyncContext, report: SyncReport, force: bool, batch_size: int) -> None:
    """Deactivate the users the directory dropped or disabled, and end their sessions.

    The updates are committed chunk by chunk; the sessions are ended once, at the end (also
    when a chunk failed), for every user deactivated: ending sessions may read every live
    session (password sign-ins in the database engine), which must not happen per chunk.
    Meanwhile a deactivated user's session is refused already (inactive users are anonymous).
    """
    targets, active, missing = _targets(ctx)
    if targets:
        _note_examples(targets, missing, report)
    safety_check(count=len(targets), active=active, force=force)
    if ctx.dry_run:
        report.deactivated = len(targets)
        return
    User = get_user_model()
    done: list[int] = []  # users of the committed chunks: their sessions end even on failure
    try:
        for start in range(0, len(targets), batch_size):
            chunk = targets[start : start + batch_size]
            with transaction.atomic():
                report.deactivated += User.objects.filter(pk__in=chunk, is_active=True).update(
                    is_active=False
                )
            done += chunk
    finally:
        report.sessions_ended += end_user_sessions(done, reason=DEACTIVATED, by="sync_users")
