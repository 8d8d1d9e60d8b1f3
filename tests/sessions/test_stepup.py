"""Admin step-up against the scripted provider: max_age/auth_time, acr_values/acr, no loop.

The scripted provider answers whatever the test says, so it plays a provider that ignores
``max_age`` (the old ``auth_time`` comes back) or ``acr_values``: the site must refuse in
words and never send the browser round again on its own.
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.sessions import lifecycle as sessions
from tests.support.scripted_signin import finish, sign_in, signed_in

pytestmark = pytest.mark.django_db

STAFF = ["app-staff", "app-admins"]  # superuser: every admin page is open to them


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def sign_in_staff(client: Client, op, *, auth_age: float | None = 0, **claims) -> None:
    auth_time = None if auth_age is None else int(time.time() - auth_age)
    sign_in(client, op, groups=STAFF, auth_time=auth_time, **claims)


def provider_params(response) -> dict[str, str]:
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def answer_step_up(client: Client, op, params: dict[str, str], **claims):
    """The provider's answer to the step-up request, with these ID-token claims."""
    return finish(client, op, state=params["state"], nonce=params["nonce"], groups=STAFF, **claims)


def test_a_recent_authentication_opens_the_admin_without_a_round_trip(client, op):
    sign_in_staff(client, op, auth_age=60)
    assert client.get("/admin/").status_code == 200
    assert len(op.forms) == 1  # the sign-in's code exchange only


def test_an_old_authentication_is_sent_to_the_provider_and_comes_back_to_the_page(client, op):
    sign_in_staff(client, op, auth_age=7200)
    params = provider_params(client.get("/admin/auth/user/?q=ali"))
    assert params["max_age"] == "3600"
    assert "acr_values" not in params and "prompt" not in params
    assert params["redirect_uri"].endswith("/oidc/callback/")

    response = answer_step_up(client, op, params, auth_time=int(time.time()) - 5)
    assert response.status_code == 302
    assert response["Location"] == "/admin/auth/user/?q=ali"
    assert client.get("/admin/auth/user/?q=ali").status_code == 200
    assert client.session[sessions.SESSION_AUTH_TIME] > time.time() - 60


def test_a_provider_ignoring_max_age_is_refused_in_words_without_a_loop(client, op, caplog):
    sign_in_staff(client, op, auth_age=7200)
    old = client.session[sessions.SESSION_AUTH_TIME]
    params = provider_params(client.get("/admin/"))

    response = answer_step_up(client, op, params, auth_time=int(old))  # the same old one
    assert response.status_code == 403  # a page, not a redirect: no loop
    assert "The admin needs a fresh sign-in" in text_of(response)
    assert "from the last 60 minutes" in text_of(response)
    assert "reason=step_up_refused" not in caplog.text
    assert "reason=auth_too_old" in caplog.text
    # The site session stays as it was: site pages work, the admin still wants a step-up.
    assert signed_in(client)
    assert client.session[sessions.SESSION_AUTH_TIME] == old
    assert client.get("/accounts/profile/").status_code == 200
    assert provider_params(client.get("/admin/"))["max_age"] == "3600"


def test_an_answer_without_auth_time_is_refused(client, op):
    sign_in_staff(client, op, auth_age=7200)
    params = provider_params(client.get("/admin/"))
    response = answer_step_up(client, op, params, auth_time=None)
    assert response.status_code == 403
    assert "did not say when you last signed in" in text_of(response)


def test_a_session_without_auth_time_steps_up(client, op):
    sign_in_staff(client, op, auth_age=None)  # a provider that does not send auth_time
    assert provider_params(client.get("/admin/"))["max_age"] == "3600"


def test_the_limit_is_a_setting(client, op, settings):
    settings.OIDC_ADMIN_MAX_AUTH_AGE = 600
    sign_in_staff(client, op, auth_age=900)
    assert provider_params(client.get("/admin/"))["max_age"] == "600"


@pytest.fixture
def mfa(settings):
    settings.OIDC_ADMIN_ACR_VALUES = "mfa, phr"
    return settings


def test_without_the_required_acr_the_provider_is_asked_for_it(client, op, mfa):
    sign_in_staff(client, op, acr="pwd")
    params = provider_params(client.get("/admin/"))
    assert params["acr_values"] == "mfa phr"
    assert params["max_age"] == "3600"

    response = answer_step_up(client, op, params, auth_time=int(time.time()), acr="pwd")
    assert response.status_code == 403
    assert "The admin needs a stronger sign-in (mfa, phr)" in text_of(response)

    params = provider_params(client.get("/admin/"))
    response = answer_step_up(client, op, params, auth_time=int(time.time()), acr="mfa")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.session[sessions.SESSION_ACR] == "mfa"


def test_a_missing_acr_is_refused(client, op, mfa):
    sign_in_staff(client, op, acr="mfa")
    assert client.get("/admin/").status_code == 200
    sign_in_staff(client, op, acr=None)  # signs in again, now without an acr
    params = provider_params(client.get("/admin/"))
    response = answer_step_up(client, op, params, auth_time=int(time.time()))
    assert response.status_code == 403


def test_signing_in_for_the_admin_asks_for_the_admin_requirement_at_once(client, op, mfa):
    response = client.get("/oidc/authenticate/?next=/admin/auth/")
    assert provider_params(response)["max_age"] == "3600"
    assert provider_params(response)["acr_values"] == "mfa phr"
    ordinary = provider_params(client.get("/oidc/authenticate/?next=/members/"))
    assert "max_age" not in ordinary and "acr_values" not in ordinary


def test_site_pages_never_ask_for_step_up(client, op, mfa):
    sign_in_staff(client, op, auth_age=7200, acr="pwd")
    for path in ("/", "/members/", "/accounts/profile/", "/api/me/"):
        assert client.get(path).status_code == 200, path
    assert len(op.forms) == 1


def test_the_profile_says_when_and_how_the_user_authenticated(client, op):
    sign_in_staff(client, op, auth_age=7200, acr="urn:example:pwd")
    page = text_of(client.get("/accounts/profile/"))
    assert "Authenticated at the provider" in page
    assert "2\xa0hours ago" in page
    assert "<code>urn:example:pwd</code>" in page


def test_a_member_is_shown_the_not_staff_page_not_a_step_up(client, op):
    sign_in(client, op, auth_time=int(time.time()) - 7200)  # groups: app-members
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert "not as staff" in text_of(response)


def test_a_script_asking_the_admin_gets_401_json(client, op):
    sign_in_staff(client, op, auth_age=7200)
    response = client.get("/admin/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "step_up_required"
    assert response.json()["sign_in_url"] == "/oidc/authenticate/?next=%2Fadmin%2F"


def test_a_break_glass_password_session_is_not_asked_for_step_up(
    client, django_user_model, settings
):
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "django.contrib.auth.backends.ModelBackend",
    ]
    user = django_user_model.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/admin/").status_code == 200


def test_signing_out_of_the_admin_never_asks_for_step_up(client, op):
    sign_in_staff(client, op, auth_age=7200)
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/session/end?")
    assert not signed_in(client)
