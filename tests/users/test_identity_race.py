"""Two first sign-ins of one subject at once (double click, two tabs) make one account."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import OIDCIdentity
from accounts.providers.provider import ClaimPolicy
from accounts.users.identities import resolve_user

ISSUER = "https://op.example"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_number", range(5))
def test_parallel_first_sign_ins_of_one_subject_end_on_one_user(round_number):
    claims = {"sub": f"sub-{round_number}", "preferred_username": "racer", "email": "r@x.org"}
    barrier = threading.Barrier(2)
    results: list[object] = []

    def sign_in() -> None:
        try:
            barrier.wait()
            results.append(resolve_user(issuer=ISSUER, claims=claims, policy=ClaimPolicy()))
        except Exception as exc:  # recorded: the assertion below shows it
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert OIDCIdentity.objects.filter(subject=claims["sub"]).count() == 1
    assert get_user_model().objects.filter(username__startswith="racer").count() == 1
