"""Per-provider private_key_jwt and admin step-up: each provider's own method and demands."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.oidc import signing_keys
from accounts.oidc.client_auth import ASSERTION_TYPE
from tests.support.fakeop import CLIENT_ID, basic_auth_header
from tests.support.providers import B_CLIENT_ID, B_SLUG, sign_in_at_b
from tests.support.scripted_signin import sign_in

pytestmark = pytest.mark.django_db


def test_private_key_jwt_at_one_provider_and_a_secret_at_the_other(
    client, op, op_b, settings, tmp_path
):
    settings.OIDC_RP_SIGNING_KEY_FILE = str(tmp_path / "keys.pem")
    signing_keys.rotate()
    settings.OIDC_PROVIDERS = {
        B_SLUG: {
            **settings.OIDC_PROVIDERS[B_SLUG],
            "token_auth_method": "private_key_jwt",
            "client_secret": "",
        }
    }

    sign_in_at_b(client, op_b)
    sign_in(Client(), op)

    (form,) = op_b.forms
    assert form["client_assertion_type"] == ASSERTION_TYPE and form["_authorization"] == ""
    published = {k["kid"]: k for k in Client().get("/oidc/jwks.json").json()["keys"]}
    header = jwt.get_unverified_header(form["client_assertion"])
    claims = jwt.decode(
        form["client_assertion"],
        jwt.PyJWK(published[header["kid"]]).key,
        algorithms=[header["alg"]],
        audience=f"{op_b.issuer}/token",  # B's token endpoint, not A's
    )
    assert claims["iss"] == claims["sub"] == B_CLIENT_ID
    assert op.forms[-1]["_authorization"] == basic_auth_header(CLIENT_ID, "site-secret")


def test_a_staff_session_steps_up_at_the_provider_it_signed_in_at_with_its_demands(
    client, op, op_b, settings
):
    settings.OIDC_PROVIDERS = {
        B_SLUG: {
            **settings.OIDC_PROVIDERS[B_SLUG],
            "admin_max_auth_age": 120,
            "admin_acr_values": ["mfa"],
        }
    }
    sign_in_at_b(client, op_b)  # the ID token carries no auth_time
    get_user_model().objects.filter(oidc_identities__issuer=op_b.issuer).update(is_staff=True)

    response = client.get("/admin/")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{op_b.issuer}/auth"
    query = parse_qs(location.query)
    assert (query["max_age"], query["acr_values"]) == (["120"], ["mfa"])
    assert query["client_id"] == [B_CLIENT_ID]
