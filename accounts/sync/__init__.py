"""Directory sync: pull users from a directory (SCIM, Keycloak, a JSON-lines file) in batches.

``engine.directory_sync`` is the service; ``sources`` read the directories; the records they
yield are claim sets, so the mapping of sign-in (``accounts.users.claims.map_claims``) applies.

May import sessions (to end a deactivated user's sessions), users, oidc, providers, audit and
below; never api, views or admin.
"""
