"""The Django admin pages: what staff see and change.

- ``users``: users, their provider identities and OIDC sessions;
- ``providers``: identity providers kept in the database, with a live check;
- ``audit``: the read-only audit log with its charts; ``readonly``: the mixin they share;
- ``signals``: the Shared Signals streams (status, last event), read-only.

The site object itself (sign-in through the provider, step-up) is
``accounts.views.admin_site.SSOAdminSite``: Django builds it while autodiscovery imports
this package, so it cannot live inside it. The top layer: may import any package below
it; nothing imports it but Django's autodiscovery, for which the line below registers the
``ModelAdmin`` classes.
"""

from accounts.admin import audit, providers, signals, users  # noqa: F401  (registers them)
