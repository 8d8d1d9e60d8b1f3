"""``manage.py prune_audit_events``: delete audit events older than the retention period.

Thin: ``--days`` (default ``OIDC_AUDIT_RETENTION_DAYS``, 180) and ``accounts.audit.log.prune``.
Run it daily (cron, a systemd timer or the platform's scheduler).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.audit import log as audit
from accounts.conf import oidc_settings


class Command(BaseCommand):
    help = "Delete audit events older than --days (default: OIDC_AUDIT_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, help="retention in days (default: OIDC_AUDIT_RETENTION_DAYS)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        days = oidc_settings.OIDC_AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        deleted = audit.prune(days=days)
        noun = "event" if deleted == 1 else "events"
        self.stdout.write(f"Deleted {deleted} audit {noun} older than {days} days.")
