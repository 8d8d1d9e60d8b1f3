"""The security audit log: what happened to whom, kept in ``AuditEvent`` rows and log lines.

- ``log``: record an event (sampled for what anyone can repeat), prune old rows;
- ``chart``: the daily summary the admin draws (its ``ModelAdmin`` is ``accounts.admin.audit``).

Low in the house: may import models, security and conf only, so every layer above can
record events.
"""
