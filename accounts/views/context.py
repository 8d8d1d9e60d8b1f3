"""Template context for every page: whether people choose among providers, and whose retry.

Registered in ``TEMPLATES``' context processors. The values are callables, so a page that
does not use them costs nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.providers.registry import all_providers
from accounts.views.chooser import several_providers


def sign_in_choice(request: HttpRequest) -> dict[str, Any]:
    """``several_providers`` and ``retry_provider_name`` (the failed attempt's provider)."""

    def retry_provider_name() -> str:
        slug = getattr(request, "oidc_provider_slug", "")
        if not slug:
            return ""
        return next((p.display_name for p in all_providers() if p.slug == slug), slug)

    return {"several_providers": several_providers, "retry_provider_name": retry_provider_name}
