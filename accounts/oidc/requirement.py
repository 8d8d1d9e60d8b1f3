"""What an authentication must satisfy: ``max_age`` and ``acr_values`` (OIDC Core 3.1.2.1).

The requirement is asked for in the authorization request (``authorization.py`` adds its
parameters and records it in the state) and the answering ID token is held to it (OIDC Core
3.1.3.7 steps 12 and 13). Who wants what (the admin's step-up) is decided in
``accounts.sessions.stepup``; this module only knows the protocol's two parameters.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accounts.conf import oidc_settings
from accounts.errors import StepUpError

REASONS = {
    "auth_time_missing": "The identity provider did not say when you last signed in there, "
    "and the admin needs a recent sign-in.",
    "auth_too_old": "The admin needs a sign-in at your identity provider from the last "
    "{minutes} minutes, and the identity provider reported an older one.",
    "auth_in_future": "The identity provider reported a sign-in in the future. A clock is wrong.",
    "acr_not_satisfied": "The admin needs a stronger sign-in ({acr}) than the one the "
    "identity provider reported.",
}


@dataclass(frozen=True)
class Requirement:
    """What an authentication must satisfy: at most ``max_age`` seconds old, an ``acr``."""

    max_age: int | None = None
    acr_values: tuple[str, ...] = ()

    def as_params(self) -> dict[str, str]:
        """The authorization request parameters that ask the provider for it."""
        params = {}
        if self.max_age is not None:
            params["max_age"] = str(self.max_age)
        if self.acr_values:
            params["acr_values"] = " ".join(self.acr_values)
        return params

    def to_state(self) -> dict[str, Any]:
        return {"max_age": self.max_age, "acr_values": list(self.acr_values)}

    @classmethod
    def from_state(cls, entry: Mapping[str, Any]) -> Requirement | None:
        """The requirement a sign-in's state recorded, if it asked for one."""
        max_age = entry.get("max_age")
        acr_values = tuple(entry.get("acr_values") or ())
        if max_age is None and not acr_values:
            return None
        return cls(max_age=None if max_age is None else int(max_age), acr_values=acr_values)


def shortfall(
    authentication: Mapping[str, Any], requirement: Requirement, now: float | None = None
) -> str | None:
    """Why ``auth_time``/``acr`` fall short of the requirement, or None when they satisfy it.

    The clock leeway applies here exactly as to the ID token, so that an authentication
    accepted at the callback is accepted by the admin right after: no loop.
    """
    now = time.time() if now is None else now
    leeway = oidc_settings.OIDC_CLOCK_LEEWAY
    if requirement.max_age is not None:
        auth_time = authentication.get("auth_time")
        if not isinstance(auth_time, (int, float)) or isinstance(auth_time, bool):
            return "auth_time_missing"
        if auth_time > now + leeway:
            return "auth_in_future"
        if now - auth_time > requirement.max_age + leeway:
            return "auth_too_old"
    if requirement.acr_values and authentication.get("acr") not in requirement.acr_values:
        return "acr_not_satisfied"
    return None


def refusal(reason: str, requirement: Requirement) -> StepUpError:
    minutes = max(1, round((requirement.max_age or 0) / 60))
    acr = ", ".join(requirement.acr_values)
    return StepUpError(reason, REASONS[reason].format(minutes=minutes, acr=acr))


def check_id_token(claims: Mapping[str, Any], requirement: Requirement | None) -> None:
    """OIDC Core 3.1.3.7 steps 12 and 13 for an ID token answering ``requirement``."""
    if requirement is None:
        return
    reason = shortfall(claims, requirement)
    if reason is not None:
        raise refusal(reason, requirement)
