"""api_auth.challenge: the RFC 6750 challenge stays a valid header whatever the words say."""

from __future__ import annotations

import pytest

from accounts.api.access import ApiRefusal, challenge


def test_a_description_with_quotes_backslashes_and_accents_stays_a_valid_header():
    refusal = ApiRefusal(401, "invalid_token", "x", 'Bad "token" \\ for café')
    body, header = challenge(refusal)
    assert header == (
        'Bearer realm="api", error="invalid_token", error_description="Bad token  for caf"'
    )
    assert body["message"] == 'Bad "token" \\ for café'  # the JSON keeps the words whole


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (
            ApiRefusal(401, "", "not_authenticated", "Sign in."),
            'Bearer realm="api", DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 EdDSA"',
        ),
        (
            ApiRefusal(403, "insufficient_scope", "insufficient_scope", "Needs it.", "api:read"),
            'Bearer realm="api", error="insufficient_scope", error_description="Needs it.", '
            'scope="api:read"',
        ),
    ],
    ids=["no-credentials", "scope"],
)
def test_the_challenge_names_the_error_only_when_credentials_were_sent(refusal, expected):
    assert challenge(refusal)[1] == expected
