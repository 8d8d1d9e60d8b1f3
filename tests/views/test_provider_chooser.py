"""Choosing a provider: buttons, the last one used first, work email routing, the default."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.support.providers import sign_in_at_b

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_has_a_button_per_provider_and_a_work_email_field(client, op, op_b):
    body = client.get("/accounts/signin/", {"next": "/members/"}).content.decode()
    assert 'name="provider" value="default" id="signin-default"' in body
    assert 'name="provider" value="b" id="signin-b"' in body
    assert 'id="work-email"' in body and 'name="next" value="/members/"' in body
    assert 'id="remember" name="remember" value="1"' in body
    assert body.index("signin-default") < body.index("signin-b")


def test_the_provider_used_last_on_this_browser_is_offered_first(client, op, op_b):
    client.cookies["oidc_last_provider"] = "b"
    body = client.get("/accounts/signin/").content.decode()
    assert body.index("signin-b") < body.index("signin-default")
    assert "used last time on this browser" in body


def test_the_admin_sign_in_page_offers_every_provider(client, op, op_b):
    body = client.get("/admin/login/", {"next": "/admin/"}).content.decode()
    assert 'id="sso-login" href="/oidc/authenticate/?provider=default&amp;next=%2Fadmin%2F"' in body
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


# --- Routing with several providers (issue 19) ----------------------------------------


@pytest.mark.parametrize("path", ["/members/", "/accounts/profile/"])
def test_a_protected_page_sends_an_anonymous_visitor_to_the_chooser_with_next(
    client, op, op_b, path
):
    response = client.get(path, follow=True)
    assert response.redirect_chain[-1][0] == f"/accounts/signin/?next={quote(path, safe='')}"
    assert f'name="next" value="{path}"' in response.content.decode()


def test_with_one_provider_a_protected_page_goes_straight_to_it(client, op):
    response = client.get("/members/", follow=False)
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/auth?")


def test_a_sign_in_naming_no_provider_goes_to_the_chooser_keeping_next(client, op, op_b):
    response = client.get("/oidc/authenticate/", {"next": "/members/?tab=2"})
    assert response["Location"] == "/accounts/signin/?next=%2Fmembers%2F%3Ftab%3D2"


def test_a_foreign_next_is_dropped_on_the_way_to_the_chooser(client, op, op_b):
    response = client.get("/oidc/authenticate/", {"next": "https://evil.example/"})
    assert response["Location"] == "/accounts/signin/"


def test_a_remembered_organisation_goes_straight_to_its_provider(client, op, op_b):
    client.cookies["oidc_remember_provider"] = "b"
    response = client.get("/oidc/authenticate/", {"next": "/members/"})
    assert response["Location"].startswith(f"{op_b.issuer}/auth?")
    # A remembered provider that is gone (or unknown) falls back to the chooser.
    client.cookies["oidc_remember_provider"] = "nope"
    response = client.get("/oidc/authenticate/", {"next": "/members/"})
    assert response["Location"] == "/accounts/signin/?next=%2Fmembers%2F"


def test_remember_is_kept_only_after_a_successful_sign_in_and_can_be_forgotten(client, op, op_b):
    from tests.support.providers import B_CLIENT_ID, answer_with, callback

    response = client.get("/oidc/authenticate/", {"provider": "b", "remember": "1"})
    assert "oidc_remember_provider" not in response.cookies  # not before it worked
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    nonce = parse_qs(urlsplit(response["Location"]).query)["nonce"][0]
    answer_with(op_b, op_b.id_token(aud=B_CLIENT_ID, nonce=nonce))
    response = callback(client, "/oidc/callback/b/", state, iss=op_b.issuer)
    assert response.status_code == 302
    assert response.cookies["oidc_remember_provider"].value == "b"
    assert response.cookies["oidc_remember_provider"]["httponly"]

    client.logout()  # forgets every cookie: the browser keeps this one
    client.cookies["oidc_remember_provider"] = "b"
    body = client.get("/accounts/signin/").content.decode()
    assert "This browser remembers your organisation" in body and "Provider B" in body
    response = client.post("/accounts/signin/forget/", {"next": "/members/"})
    assert response["Location"] == "/accounts/signin/?next=%2Fmembers%2F"
    assert response.cookies["oidc_remember_provider"].value == ""
    assert response.cookies["oidc_remember_provider"]["max-age"] == 0


def test_without_remember_no_organisation_is_remembered(client, op, op_b):
    sign_in_at_b(client, op_b)
    assert "oidc_remember_provider" not in client.cookies


def test_forgetting_needs_post(client, op, op_b):
    assert client.get("/accounts/signin/forget/").status_code == 405


def test_an_unknown_email_domain_shows_the_chooser_buttons_and_keeps_next(client, op, op_b):
    response = client.get(
        "/oidc/authenticate/", {"email": "x@elsewhere.example", "next": "/members/"}
    )
    assert response.status_code == 404
    body = response.content.decode()
    assert "No identity provider of this site handles that email address" in body
    assert 'id="signin-default"' in body and 'id="signin-b"' in body
    assert 'value="x@elsewhere.example"' in body and 'name="next" value="/members/"' in body


def test_an_error_page_offers_the_attempts_provider_and_the_chooser(client, op, op_b):
    state, _nonce, _ = start_at_with_next(client, "b", "/members/")
    response = client.get("/oidc/callback/b/", {"state": state, "error": "access_denied"})
    body = response.content.decode()
    assert 'id="sign-in-again" href="/oidc/authenticate/?provider=b&amp;next=%2Fmembers%2F"' in body
    assert "Sign in again with Provider B" in body
    assert 'id="choose-another" href="/accounts/signin/?next=%2Fmembers%2F"' in body


def test_a_garbage_callback_offers_the_chooser_not_a_provider(client, op, op_b):
    body = client.get("/oidc/callback/", {"state": "forged", "code": "x"}).content.decode()
    assert 'id="sign-in-again" href="/oidc/authenticate/"' in body
    assert 'id="choose-another" href="/accounts/signin/"' in body


def test_with_one_provider_the_error_page_has_no_chooser_link(client, op):
    body = client.get("/oidc/callback/", {"state": "forged", "code": "x"}).content.decode()
    assert 'id="sign-in-again"' in body and "choose-another" not in body


def test_the_api_401_sign_in_url_leads_to_the_chooser(client, op, op_b):
    body = client.get("/api/me/").json()
    response = client.get(body["sign_in_url"])
    assert response.status_code == 302 and response["Location"].startswith("/accounts/signin/")


def test_a_signed_in_visitor_of_the_sign_in_page_sees_who_they_are(client, op, op_b):
    sign_in_at_b(client, op_b)
    body = client.get("/accounts/signin/", {"next": "/members/"}).content.decode()
    assert "You are already signed in as" in body
    assert 'id="signin-continue" href="/members/"' in body
    assert 'name="next" value="/accounts/signin/?next=%2Fmembers%2F"' in body
    assert 'id="signin-b"' not in body


def start_at_with_next(client, slug: str, next_url: str):
    response = client.get("/oidc/authenticate/", {"provider": slug, "next": next_url})
    query = parse_qs(urlsplit(response["Location"]).query)
    return query["state"][0], query["nonce"][0], query


def test_the_admin_sign_in_page_goes_straight_to_a_remembered_organisation(client, op, op_b):
    client.cookies["oidc_remember_provider"] = "b"
    response = client.get("/admin/login/", {"next": "/admin/"})
    assert response["Location"] == "/oidc/authenticate/?provider=b&next=%2Fadmin%2F"
    response = client.get(response["Location"])
    assert response["Location"].startswith(f"{op_b.issuer}/auth?")
    assert "acr_values" not in response["Location"] and "max_age=3600" in response["Location"]


def test_the_favicon_is_served_and_named_by_every_page(client, op):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in client.get("/").content.decode()
