"""Free usernames for new users: one allocator for sign-in (one name) and sync (a batch).

``username_candidates`` (the sign-in rule: ``base``, ``base-2``, ``base-3``...) decides the
names; a name is free when neither the database nor the caller has used it. A sync run's
own names matter for a dry run (nothing is written) and within a batch (two new users whose
preferred username is the same). Every look-up is an exact ``IN`` on the unique username
index, in windows of candidates that grow for crowded names: no query reads every username
sharing a prefix, and a batch usually costs one query, or two when names collide.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from itertools import chain, islice

from django.contrib.auth import get_user_model

from accounts.errors import AccountError
from accounts.users.claims import username_candidates

SUFFIXES_PER_QUERY = 20  # the first window of suffixes; each later window is GROWTH times larger
GROWTH = 5
NAMES_PER_QUERY = 10_000  # keeps an IN list of a crowded batch within reason

Lookup = Callable[[Collection[str]], set[str]]


def _taken(names: Collection[str]) -> set[str]:
    """Which of these names the database already has (exact matches)."""
    User = get_user_model()
    field = User.USERNAME_FIELD
    ordered = sorted(names)
    taken: set[str] = set()
    for start in range(0, len(ordered), NAMES_PER_QUERY):
        chunk = ordered[start : start + NAMES_PER_QUERY]
        rows = User.objects.filter(**{f"{field}__in": chunk}).values_list(field, flat=True)
        taken.update(rows)
    return taken


def _nothing_taken(names: Collection[str]) -> set[str]:
    return set()


def _suffixed(
    clashing: dict[int, str], taken: set[str], used: set[str], lookup: Lookup
) -> dict[int, str]:
    """A free ``base-N`` for each clashing base (index -> base), looking window by window."""
    chosen: dict[int, str] = {}
    start, size = 1, SUFFIXES_PER_QUERY
    while pending := {i: base for i, base in clashing.items() if i not in chosen}:
        windows = {
            i: list(islice(username_candidates(base), start, start + size))
            for i, base in pending.items()
        }
        if not all(windows.values()):  # some base has used up all 9,999 candidates
            raise AccountError("username_exhausted", "No free username could be found for you.")
        taken |= lookup(set(chain.from_iterable(windows.values())))
        for index, names in windows.items():
            name = next((n for n in names if n not in taken and n not in used), None)
            if name is not None:
                used.add(name)
                chosen[index] = name
        start, size = start + size, size * GROWTH
    return chosen


def free_usernames(bases: Sequence[str], used: set[str], *, database: bool = True) -> list[str]:
    """One free username per base, in order; each name chosen is added to ``used``.

    A base that is free is kept as it is before any suffix is handed out, so that a user
    keeps their preferred name whenever nobody holds it. Raises ``AccountError`` when all
    of a base's candidates are taken. ``database=False`` looks nothing up: only ``used``
    counts (a first load, which the unique username index guards instead).
    """
    lookup = _taken if database else _nothing_taken
    taken = lookup(set(bases))
    chosen: dict[int, str] = {}
    for index, base in enumerate(bases):
        if base not in taken and base not in used:
            used.add(base)
            chosen[index] = base
    clashing = {i: base for i, base in enumerate(bases) if i not in chosen}
    if clashing:
        chosen.update(_suffixed(clashing, taken, used, lookup))
    return [chosen[i] for i in range(len(bases))]
