"""The sync service: read a directory in batches, plan and write each batch, then deactivate.

Memory stays flat: records stream from the source, one batch of ``OIDC_SYNC_BATCH_SIZE``
model objects exists at a time, and only the subjects seen (strings) are kept for the run.
Each batch costs a handful of bulk queries (see ``plan`` and ``writes``) and is committed on
its own, so an interrupted run loses nothing and a re-run completes it. A batch that collides
with a concurrent sign-in is planned and written again (``writes.batch_write``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.db import DatabaseError

from accounts.audit import log as audit
from accounts.conf import oidc_settings
from accounts.providers.provider import DEFAULT_SLUG, Provider
from accounts.providers.registry import issuer_owner
from accounts.sync.context import SyncContext, directory_policy
from accounts.sync.deactivation import deactivation_run
from accounts.sync.errors import SourceError, SyncError
from accounts.sync.locking import sync_lock
from accounts.sync.plan import BatchPlan, batch_plan, first_load
from accounts.sync.records import DirectoryUser, Record, SkippedRecord
from accounts.sync.report import SyncReport
from accounts.sync.sources import DirectorySource
from accounts.sync.statistics import StatisticsKeeper
from accounts.sync.writes import batch_write

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]


def _read(source: DirectorySource, report: SyncReport) -> Iterator[Record]:
    """The source's records; any failure while reading becomes a ``SourceError``."""
    records = iter(source.records())
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:  # whatever broke, the directory was not read
            reason = str(exc) if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}"
            where = f" after {report.records} records" if report.records else ""
            raise SourceError(
                f"reading the {source.name} directory failed{where}: {reason}"
            ) from exc
        yield record


def _usable(
    records: Iterable[Record], ctx: SyncContext, report: SyncReport
) -> Iterator[DirectoryUser]:
    """Count every record; report the skipped ones and repeated subjects; yield the rest."""
    for record in records:
        report.records += 1
        if isinstance(record, SkippedRecord):
            report.skip(record.ref, record.reason)
        elif record.subject in ctx.seen:
            report.skip(record.ref, "duplicate sub")
        else:
            ctx.seen.add(record.subject)
            yield record


def _batches(users: Iterator[DirectoryUser], size: int) -> Iterator[list[DirectoryUser]]:
    while batch := list(islice(users, size)):
        yield batch


def _record(plan: BatchPlan, report: SyncReport) -> None:
    for action in ("created", "updated", "unchanged", "reactivated", "linked"):
        setattr(report, action, getattr(report, action) + plan.counts[action])
    for ref, reason in plan.skips:
        report.skip(ref, reason)
    for action, text in plan.examples:
        report.note(action, text)


def _sync_records(
    source: DirectorySource,
    ctx: SyncContext,
    report: SyncReport,
    size: int,
    progress: Progress | None,
) -> None:
    statistics = StatisticsKeeper()
    for batch in _batches(_usable(_read(source, report), ctx, report), size):
        plan = batch_plan(batch, ctx)
        if not ctx.dry_run:
            plan = batch_write(batch, plan, ctx)  # the plan written: re-made after a conflict
            if ctx.look_up_existing:
                ctx.assigned_usernames.clear()  # they are in the database now, and looked up
            statistics.created_rows(
                len(plan.creates) + len(plan.new_identities), reads=ctx.look_up_existing
            )
        _record(plan, report)
        if progress is not None:
            progress(report.records, source.total)
    statistics.run_ended()
    if progress is not None:
        progress(report.records, source.total or report.records)


def directory_sync(
    *,
    source: DirectorySource,
    issuer: str,
    deactivate_missing: bool = False,
    dry_run: bool = False,
    force: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
    provider: Provider | None = None,
) -> SyncReport:
    """Bring the local users of ``issuer`` in line with the directory; return the report.

    ``provider`` (``sync_users --provider``) supplies the claim mapping and the email-linking
    rule of that provider; without it, the default provider's settings apply.

    Raises ``SyncError`` (``SyncLocked``, ``SourceError``, ``SyncAborted``) with the report
    of what was done before the failure.
    """
    if not issuer:
        raise SyncError("no issuer: set OIDC_OP_ISSUER (identities are keyed by issuer)")
    size = max(1, int(batch_size or oidc_settings.OIDC_SYNC_BATCH_SIZE))
    report = SyncReport(source=source.name, issuer=issuer, dry_run=dry_run)
    ctx = SyncContext(issuer=issuer, manage_activation=deactivate_missing, dry_run=dry_run)
    owner = provider or issuer_owner(issuer)
    ctx.provider = owner.slug if owner is not None else DEFAULT_SLUG
    if provider is not None:
        ctx.policy, ctx.link_by_email = directory_policy(provider), provider.link_by_email
    started = time.monotonic()
    try:
        with sync_lock():
            ctx.look_up_existing = dry_run or not first_load(issuer)
            _sync_records(source, ctx, report, size, progress)
            if deactivate_missing:
                deactivation_run(ctx=ctx, report=report, force=force, batch_size=size)
    except SyncError as exc:
        exc.report, report.error = report, str(exc)
        raise
    except DatabaseError as exc:
        report.error = f"database error: {type(exc).__name__}: {exc}"
        raise SyncError(report.error, report=report) from exc
    finally:
        report.seconds = time.monotonic() - started
        logger.info(
            "sync_users source=%s records=%d created=%d updated=%d unchanged=%d deactivated=%d "
            "skipped=%d dry_run=%s error=%s",
            source.name,
            report.records,
            report.created,
            report.updated,
            report.unchanged,
            report.deactivated,
            report.skipped,
            dry_run,
            report.error,
        )
        if not dry_run:  # a dry run writes nothing, not even its audit row
            _audit(report, provider)
    return report


def _audit(report: SyncReport, provider: Provider | None = None) -> None:
    """The run's summary as one audit row: counts and reasons, no user names."""
    summary = report.as_dict()
    detail = {k: v for k, v in summary.items() if k not in ("plan", "skipped_records", "issuer")}
    audit.record(
        audit.SYNC_RUN,
        audit.FAILURE if report.error else audit.SUCCESS,
        issuer=report.issuer,
        provider=provider.slug if provider else "default",
        detail=detail,
    )
