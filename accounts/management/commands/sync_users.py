"""``manage.py sync_users``: bring local users in line with a directory (SCIM, Keycloak, file).

Thin: parse the options, call ``accounts.sync.engine.directory_sync``, print the summary
(a table, or JSON with ``--json``), and exit non-zero with the reason on any failure.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.conf import oidc_settings
from accounts.errors import OIDCError
from accounts.providers.registry import provider_get
from accounts.sync.engine import directory_sync
from accounts.sync.errors import SyncError
from accounts.sync.report import SyncReport
from accounts.sync.sources import SOURCE_KINDS, source_build

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Create, update and (with --deactivate-missing) deactivate users from a directory: "
        "a SCIM 2.0 server, Keycloak's admin API, or a JSON-lines file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, choices=SOURCE_KINDS)
        parser.add_argument("--file", help="the JSON-lines file, for --source file")
        parser.add_argument("--issuer", help="issuer of the identities (default: OIDC_OP_ISSUER)")
        parser.add_argument(
            "--provider",
            help="the provider (slug) whose users these are: its issuer, claim mapping, "
            "email-linking rule and client (for SCIM/Keycloak tokens); default: default",
        )
        parser.add_argument(
            "--deactivate-missing",
            action="store_true",
            help="deactivate users missing or disabled in the directory, and end their sessions",
        )
        parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
        parser.add_argument(
            "--force",
            action="store_true",
            help="deactivate even more than OIDC_SYNC_MAX_DEACTIVATE_RATIO of the active users",
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--batch-size", type=int, help="default: OIDC_SYNC_BATCH_SIZE")

    def handle(self, *args: Any, **options: Any) -> None:
        show_bar = not options["json"] and self.stdout.isatty()
        try:
            provider = provider_get(options["provider"]) if options["provider"] else None
            source = source_build(
                kind=options["source"],
                path=options["file"],
                page_size=options["batch_size"],
                provider=provider,
            )
            issuer = provider.issuer if provider else oidc_settings.OIDC_OP_ISSUER
            report = directory_sync(
                source=source,
                provider=provider,
                issuer=options["issuer"] or issuer,
                deactivate_missing=options["deactivate_missing"],
                dry_run=options["dry_run"],
                force=options["force"],
                batch_size=options["batch_size"],
                progress=self._draw_bar if show_bar else None,
            )
        except (SyncError, OIDCError) as exc:
            if show_bar:
                self.stdout.write("")
            report = getattr(exc, "report", None)
            if report is not None:
                self._print(report, options)
            raise CommandError(f"sync_users failed: {exc}") from exc
        if show_bar:
            self.stdout.write("")
        self._print(report, options)

    def _print(self, report: SyncReport, options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            with_plan = report.dry_run or options["verbosity"] >= 2
            self.stdout.write(report.render(with_plan=with_plan))

    def _draw_bar(self, done: int, total: int | None) -> None:
        """A one-line progress bar, redrawn in place (only on a terminal)."""
        if total:
            filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
        else:
            line = f"{done} records"
        self.stdout.write(f"\r{line}", ending="")
        self.stdout.flush()
