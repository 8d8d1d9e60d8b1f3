"""Django's ``clearsessions``, which also deletes the OIDC state of the sessions it cleared.

Schedule it as Django recommends (e.g. hourly): expired sessions go, and with them every
``OIDCSession`` row (and its encrypted refresh token) whose session is gone, whatever
removed the session (expiry, a flush, a cycled key, a server-side delete).
"""

from __future__ import annotations

from django.contrib.sessions.management.commands import clearsessions

from accounts.sessions import lifecycle as sessions


class Command(clearsessions.Command):
    help = clearsessions.Command.help + " Also removes the OIDC state of sessions that are gone."

    def handle(self, **options):
        super().handle(**options)
        removed = sessions.prune_orphans()
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(f"removed the OIDC state of {removed} session(s) that are gone")
