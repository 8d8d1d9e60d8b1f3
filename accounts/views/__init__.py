"""The site's pages and endpoints: thin views over the services of the packages below.

- ``oidc``: sign-in start and the callback; ``chooser``: the sign-in page and provider choice;
- ``logout``: RP-initiated, back- and front-channel logout; ``pages``: home, profile, health;
- ``api``/``drf_api``: ``/api/me/`` and ``/api/whoami/`` (plain and DRF);
- ``admin_site``: ``SSOAdminSite``, the admin's sign-in through the provider and step-up;
- ``context``: the template context processor (several providers, the retry's provider);
- ``csp``: the Content-Security-Policy middleware (providers in ``form-action``) and
  ``/csp-report/``.

May import api, sync, sessions, users, oidc, providers and below; never admin or management.
"""
