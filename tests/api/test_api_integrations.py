"""The plain Django integration (decorator, mixin) and the DRF one behave the same.

Same tokens, same answers: status, JSON and ``WWW-Authenticate``. Bearer requests are exempt
from CSRF; session requests keep it.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.api.test_access_tokens import access_token
from tests.support.sessions import signed_in_session

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

PAIRS = [("/api/me/", "/api/drf/me/"), ("/api/whoami/", "/api/drf/whoami/")]
WRITES = ["/api/test/plain-write/", "/api/test/mixin-write/", "/api/test/drf-write/"]


def answer(response) -> tuple[int, dict, str]:
    return response.status_code, response.json(), response.get("WWW-Authenticate", "")


def cases(op) -> dict[str, dict]:
    """Authorization headers for each kind of caller."""
    return {
        "user": {"HTTP_AUTHORIZATION": f"Bearer {access_token(op)}"},
        "user-without-scope": {"HTTP_AUTHORIZATION": f"Bearer {access_token(op, scope='x')}"},
        "machine": {
            "HTTP_AUTHORIZATION": f"Bearer {access_token(op, sub='api-client', scope='api:read')}"
        },
        "expired": {"HTTP_AUTHORIZATION": f"Bearer {access_token(op, exp=1)}"},
        "garbage": {"HTTP_AUTHORIZATION": "Bearer a.b.c"},
        "anonymous": {},
    }


@pytest.mark.parametrize(("plain", "drf"), PAIRS, ids=["me", "whoami"])
def test_the_drf_view_and_the_plain_view_answer_alike(op, plain, drf):
    signed_in_session(Client(), issuer=op.issuer)  # alice exists
    for name, headers in cases(op).items():
        plain_answer = answer(Client().get(plain, **headers))
        drf_answer = answer(Client().get(drf, **headers))
        assert plain_answer == drf_answer, name
    statuses = {
        name: Client().get(plain, **headers).status_code for name, headers in cases(op).items()
    }
    expected_machine = 200 if plain == "/api/whoami/" else 403
    expected_unscoped = 403 if plain == "/api/whoami/" else 200
    assert statuses == {
        "user": 200,
        "user-without-scope": expected_unscoped,
        "machine": expected_machine,
        "expired": 401,
        "garbage": 401,
        "anonymous": 401,
    }


@pytest.mark.parametrize(("plain", "drf"), PAIRS, ids=["me", "whoami"])
def test_a_session_answers_alike_on_both(op, plain, drf):
    client = Client()
    signed_in_session(client, issuer=op.issuer)
    assert answer(client.get(plain)) == answer(client.get(drf))
    assert client.get(plain).status_code == 200


@pytest.mark.parametrize("url", WRITES)
def test_a_bearer_post_needs_no_csrf_token(op, url):
    signed_in_session(Client(), issuer=op.issuer)
    client = Client(enforce_csrf_checks=True)
    token = access_token(op, scope="api:write")
    response = client.post(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response.json() == {"written_by": "alice"}


@pytest.mark.parametrize("url", WRITES)
def test_a_session_post_without_the_csrf_token_is_refused(op, url):
    client = Client(enforce_csrf_checks=True)
    signed_in_session(client, issuer=op.issuer)
    assert client.post(url).status_code == 403
    client.get("/")  # the page sets the CSRF cookie, as a browser would have it
    token = client.cookies["csrftoken"].value
    response = client.post(url, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert response.json() == {"written_by": "alice"}


@pytest.mark.parametrize("url", WRITES)
def test_a_bearer_post_without_the_write_scope_is_403_on_every_integration(op, url):
    signed_in_session(Client(), issuer=op.issuer)
    response = Client().post(url, HTTP_AUTHORIZATION=f"Bearer {access_token(op, scope='api:read')}")
    assert response.status_code == 403
    assert response.json()["scope"] == "api:write"
