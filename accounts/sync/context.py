"""The state one sync run carries from batch to batch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.utils import timezone

from accounts.conf import oidc_settings
from accounts.providers.provider import ClaimPolicy, Provider


def directory_policy(provider: Provider | None = None) -> ClaimPolicy:
    """The sign-in policy, except that directory records always carry groups in ``groups``.

    Sources translate their own group attribute into ``groups`` (the JSON-lines format
    names it so too), so the site's ``OIDC_GROUPS_CLAIM`` does not apply to them; the
    allow-list, prefix, staff and superuser groups do.
    """
    policy = provider.policy if provider is not None else ClaimPolicy.from_settings()
    return replace(policy, groups_claim="groups")


@dataclass
class SyncContext:
    """Options of the run, and what it has learned so far (seen subjects, group ids)."""

    issuer: str
    provider: str = "default"  # the slug new identities are created through
    policy: ClaimPolicy = field(default_factory=directory_policy)
    manage_activation: bool = False
    link_by_email: bool = field(default_factory=lambda: bool(oidc_settings.OIDC_LINK_BY_EMAIL))
    dry_run: bool = False
    # False during a first load (``plan.first_load``): planning reads nothing that exists,
    # and the unique constraints catch what exists after all (see ``writes.batch_write``).
    look_up_existing: bool = True
    now: datetime = field(default_factory=timezone.now)
    seen: set[str] = field(default_factory=set)
    # The usernames planned and not yet in the database; during a first load, every
    # username the run created (no look-up would find them otherwise).
    assigned_usernames: set[str] = field(default_factory=set)
    group_ids: dict[str, int] = field(default_factory=dict)
    disabled_user_ids: set[int] = field(default_factory=set)

    @property
    def manages_groups(self) -> bool:
        """Whether the policy lets the provider manage any group at all."""
        return bool(self.policy.groups_allowlist or self.policy.groups_prefix)
