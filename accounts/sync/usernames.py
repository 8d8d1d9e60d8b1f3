"""Free usernames for a batch of new users, in one or two queries.

``username_candidates`` (the sign-in rule: ``base``, ``base-2``, ``base-3``...) decides the
names; a name is free when neither the database nor this run has used it. The run's own
names matter for a dry run (nothing is written) and within a batch (two new users whose
preferred username is the same).
"""

from __future__ import annotations

from itertools import chain, islice

from django.contrib.auth import get_user_model

from ..claims import username_candidates
from .context import SyncContext

SUFFIXES_PER_QUERY = 20


def _taken(names: set[str]) -> set[str]:
    User = get_user_model()
    field = User.USERNAME_FIELD
    if not names:
        return set()
    return set(User.objects.filter(**{f"{field}__in": names}).values_list(field, flat=True))


def _taken_with_prefix(base: str) -> set[str]:
    User = get_user_model()
    field = User.USERNAME_FIELD
    return set(User.objects.filter(**{f"{field}__startswith": base}).values_list(field, flat=True))


def usernames_allocate(*, bases: list[str], ctx: SyncContext) -> list[str]:
    """Return one free username per base, in order, and remember them in ``ctx``."""
    used = ctx.assigned_usernames
    taken = _taken(set(bases))
    chosen: list[str | None] = []
    for base in bases:
        free = base not in taken and base not in used
        chosen.append(base if free else None)
        if free:
            used.add(base)
    clashing = [index for index, name in enumerate(chosen) if name is None]
    if not clashing:
        return chosen  # type: ignore[return-value]
    tries = {
        i: list(islice(username_candidates(bases[i]), 1, 1 + SUFFIXES_PER_QUERY)) for i in clashing
    }
    taken |= _taken(set(chain.from_iterable(tries.values())))
    for index in clashing:
        name = next((c for c in tries[index] if c not in taken and c not in used), None)
        if name is None:  # more than 20 people share this name: look at all of them
            crowded = _taken_with_prefix(bases[index]) | used
            name = next(c for c in username_candidates(bases[index]) if c not in crowded)
        used.add(name)
        chosen[index] = name
    return chosen  # type: ignore[return-value]
