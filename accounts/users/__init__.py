"""From validated claims to local users: the authentication backend and what it calls.

- ``backend``: ``OIDCBackend``, thin hooks over mozilla-django-oidc;
- ``claims``: pure mapping of claims onto fields, groups and flags (no ORM, no HTTP);
- ``identities``: the (issuer, subject) identity of a user, created or linked;
- ``links``: linking by verified email; ``usernames``: free usernames.

May import oidc, providers, audit, models, security and below; never sessions, api, views
or admin.
"""
