"""Choosing a provider: buttons, the last one used first, work email routing, the default."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_has_a_button_per_provider_and_a_work_email_field(client, op, op_b):
    body = client.get("/accounts/signin/", {"next": "/members/"}).content.decode()
    assert 'id="signin-default" href="/oidc/authenticate/?next=/members/"' in body
    assert 'id="signin-b" href="/oidc/authenticate/?provider=b&amp;next=/members/"' in body
    assert 'id="work-email"' in body and 'name="next" value="/members/"' in body
    assert body.index("signin-default") < body.index("signin-b")


def test_the_provider_used_last_on_this_browser_is_offered_first(client, op, op_b):
    client.cookies["oidc_last_provider"] = "b"
    body = client.get("/accounts/signin/").content.decode()
    assert body.index("signin-b") < body.index("signin-default")
    assert "used last time on this browser" in body


def test_the_admin_sign_in_page_offers_every_provider(client, op, op_b):
    body = client.get("/admin/login/", {"next": "/admin/"}).content.decode()
    assert 'id="sso-login" href="/oidc/authenticate/?next=%2Fadmin%2F"' in body
    assert 'id="sso-login-b" href="/oidc/authenticate/?provider=b&amp;next=%2Fadmin%2F"' in body
    assert 'id="work-email"' in body


def test_a_work_email_goes_to_its_provider_with_a_login_hint(client, op, op_b):
    response = client.get("/oidc/authenticate/", {"email": "bea@B.example", "next": "/members/"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == op_b.issuer
    assert parse_qs(location.query)["login_hint"] == ["bea@B.example"]


@pytest.mark.parametrize(
    ("email", "words"),
    [
        ("someone@elsewhere.example", "No identity provider of this site handles that email"),
        ("not-an-email", "That is not an email address."),
    ],
)
def test_a_work_email_no_provider_handles_gets_a_page_in_words(client, op, op_b, email, words):
    response = client.get("/oidc/authenticate/", {"email": email})
    assert response.status_code == 404
    assert words in response.content.decode()


def test_without_a_default_provider_sign_in_starts_on_the_sign_in_page(client, op, op_b, settings):
    settings.OIDC_OP_ISSUER = ""
    settings.OIDC_RP_CLIENT_ID = ""
    response = client.get("/oidc/authenticate/", {"next": "/members/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/signin/?next=%2Fmembers%2F"
    body = client.get(response["Location"]).content.decode()
    assert 'id="signin-b"' in body and 'id="signin-default"' not in body
