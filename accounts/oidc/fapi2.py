"""What the FAPI 2.0 Security Profile (final, 2025) asks of a provider's metadata.

``fapi2_requirements`` reads a provider's discovery metadata and says, one requirement at a
time, whether the provider meets what this site needs to follow the profile with it:
PAR, DPoP with ES256 proofs, ``private_key_jwt`` with PS256 or ES256, RFC 9207 ``iss`` on
the authorization response, PKCE S256 and ID tokens in PS256, ES256 or EdDSA. Pure: no
HTTP; ``manage.py oidc_check`` (``accounts.diagnostics``) prints the results.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accounts.conf import FAPI2_ALGORITHMS
from accounts.oidc.dpop import ALGORITHM as DPOP_ALGORITHM

CLIENT_AUTH_ALGORITHMS = ("PS256", "ES256")


def _listed(metadata: dict[str, Any], name: str) -> list[str] | None:
    value = metadata.get(name)
    return [str(item) for item in value] if isinstance(value, list) else None


def _offers(
    metadata: dict[str, Any], name: str, wanted: Iterable[str], what: str
) -> tuple[bool, str]:
    offered = _listed(metadata, name)
    if offered is None:
        return False, f"the metadata has no {name}"
    found = [item for item in wanted if item in offered]
    if found:
        return True, f"{what}: {', '.join(found)}"
    return False, f"{name} offers {', '.join(offered) or 'nothing'}, none of {', '.join(wanted)}"


def fapi2_requirements(metadata: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(name, met, detail) for each FAPI 2.0 requirement this site relies on."""
    results = []
    par = metadata.get("pushed_authorization_request_endpoint")
    results.append(
        (
            "fapi2 par",
            bool(par),
            f"PAR at {par}" if par else "no pushed_authorization_request_endpoint",
        )
    )
    results.append(
        (
            "fapi2 dpop",
            *_offers(
                metadata, "dpop_signing_alg_values_supported", [DPOP_ALGORITHM], "DPoP proofs"
            ),
        )
    )
    results.append(
        (
            "fapi2 client auth",
            *_offers(
                metadata,
                "token_endpoint_auth_methods_supported",
                ["private_key_jwt"],
                "client authentication",
            ),
        )
    )
    signing = _listed(metadata, "token_endpoint_auth_signing_alg_values_supported")
    if signing is not None:
        results.append(
            (
                "fapi2 assertion algs",
                *_offers(
                    metadata,
                    "token_endpoint_auth_signing_alg_values_supported",
                    CLIENT_AUTH_ALGORITHMS,
                    "client assertions",
                ),
            )
        )
    iss = metadata.get("authorization_response_iss_parameter_supported") is True
    results.append(
        (
            "fapi2 response iss",
            iss,
            "RFC 9207 iss on the authorization response"
            if iss
            else "authorization_response_iss_parameter_supported is not true",
        )
    )
    results.append(
        (
            "fapi2 pkce",
            *_offers(metadata, "code_challenge_methods_supported", ["S256"], "PKCE"),
        )
    )
    results.append(
        (
            "fapi2 id token algs",
            *_offers(
                metadata, "id_token_signing_alg_values_supported", FAPI2_ALGORITHMS, "ID tokens"
            ),
        )
    )
    return results
