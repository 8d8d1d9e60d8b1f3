"""Pure tests of ``accounts.users.claims``: tables of claims in, local profile (changes) out."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.providers.provider import ClaimPolicy
from accounts.users.claims import (
    USERNAME_MAX_LENGTH,
    field_changes,
    group_changes,
    map_claims,
    username_candidates,
)

POLICY = ClaimPolicy(
    groups_prefix="app-", staff_groups=("app-staff",), superuser_groups=("app-admins",)
)


def profile(policy: ClaimPolicy = POLICY, **claims: Any):
    claims.setdefault("sub", "s-1")
    return map_claims({k: v for k, v in claims.items() if v is not None}, policy)


# --- username -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claims", "policy", "username"),
    [
        ({"preferred_username": "alice", "email": "a@x.org"}, POLICY, "alice"),
        ({"preferred_username": "  alice  "}, POLICY, "alice"),
        (
            {"nickname": "ali", "preferred_username": "alice"},
            ClaimPolicy(username_claim="nickname"),
            "ali",
        ),
        (
            {"email": "alice.l@example.com", "preferred_username": "alice"},
            ClaimPolicy(username_claim="email"),
            "alice.l@example.com",
        ),
        ({"email": "Bob.Smith@Example.com"}, POLICY, "bob.smith"),
        ({"preferred_username": "", "email": "carol@example.com"}, POLICY, "carol"),
        ({"preferred_username": "   ", "email": "carol@example.com"}, POLICY, "carol"),
        ({"preferred_username": 42, "email": "dave@example.com"}, POLICY, "dave"),
        ({"sub": "abc-123"}, POLICY, "user-abc-123"),
        ({"sub": "abc-123", "email": ""}, POLICY, "user-abc-123"),
        ({"sub": "a|b c", "email": "@example.com"}, POLICY, "user-a_b_c"),
    ],
    ids=[
        "configured-claim",
        "stripped",
        "other-configured-claim",
        "email-as-claim",
        "fallback-email-local-part-lowercased",
        "empty-claim-falls-back-to-email",
        "blank-claim-falls-back-to-email",
        "non-string-claim-falls-back-to-email",
        "fallback-user-sub",
        "empty-email-falls-back-to-sub",
        "sub-cleaned",
    ],
)
def test_username_from_claim_then_email_local_part_then_sub(claims, policy, username):
    assert profile(policy, **claims).username == username


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("alice smith", "alice_smith"),
        ("al/ice", "al_ice"),
        ("<script>", "_script_"),
        ("o'brien", "o_brien"),
        ("a.b-c_d+e@f", "a.b-c_d+e@f"),
        ("élodie", "élodie"),
        ("semi;colon", "semi_colon"),
    ],
)
def test_unsafe_username_characters_are_replaced(raw, cleaned):
    assert profile(preferred_username=raw).username == cleaned


def test_long_username_is_truncated_to_the_user_model_limit():
    assert profile(preferred_username="x" * 500).username == "x" * USERNAME_MAX_LENGTH


def test_username_candidates_keep_the_suffix_within_the_limit():
    base = "y" * USERNAME_MAX_LENGTH
    candidates = username_candidates(base)
    assert next(candidates) == base
    second = next(candidates)
    assert second.endswith("-2") and len(second) == USERNAME_MAX_LENGTH


# --- groups ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "groups", "expected"),
    [
        (ClaimPolicy(groups_allowlist=("editors",)), ["editors", "admins"], {"editors"}),
        (
            ClaimPolicy(groups_prefix="app-"),
            ["app-a", "app-b", "other", "xapp-c"],
            {"app-a", "app-b"},
        ),
        (
            ClaimPolicy(groups_allowlist=("editors",), groups_prefix="app-"),
            ["editors", "app-a", "x"],
            {"editors", "app-a"},
        ),
        (ClaimPolicy(), ["editors", "app-a"], set()),
        (
            ClaimPolicy(groups_prefix="app-"),
            ["/app-a", "/app-team/sub", " /app-c "],
            {"app-a", "app-team/sub", "app-c"},
        ),
        (ClaimPolicy(groups_prefix="app-"), "app-single", {"app-single"}),
        (ClaimPolicy(groups_prefix="app-"), ["app-a", 7, None, "", "/"], {"app-a"}),
        (ClaimPolicy(groups_prefix="app-"), None, set()),
        (ClaimPolicy(groups_prefix="app-"), 12, set()),
        (ClaimPolicy(groups_prefix="app-"), {"app-a": True}, {"app-a"}),
        (ClaimPolicy(groups_allowlist=("Editors",)), ["editors"], set()),
    ],
    ids=[
        "allow-list",
        "prefix",
        "allow-list-and-prefix",
        "none-when-neither-configured",
        "keycloak-paths",
        "single-string",
        "junk-entries-skipped",
        "missing-claim",
        "not-a-list",
        "mapping-keys",
        "allow-list-is-case-sensitive",
    ],
)
def test_groups_filtered_by_allow_list_and_prefix(policy, groups, expected):
    assert profile(policy, groups=groups).groups == frozenset(expected)


def test_groups_read_from_the_configured_claim():
    policy = ClaimPolicy(groups_claim="roles", groups_prefix="app-")
    assert profile(policy, roles=["app-r"], groups=["app-g"]).groups == {"app-r"}


@pytest.mark.parametrize(
    ("groups", "is_staff", "is_superuser", "staff_field"),
    [
        (["app-members"], False, False, False),
        (["app-staff"], True, False, True),
        (["app-admins"], False, True, True),
        (["app-staff", "app-admins"], True, True, True),
        (["/app-staff"], True, False, True),
        ("app-admins", False, True, True),
        (["staff"], False, False, False),
        ([], False, False, False),
    ],
    ids=[
        "member",
        "staff",
        "superuser-implies-staff",
        "both",
        "keycloak-path",
        "single-string",
        "unprefixed-name",
        "no-groups",
    ],
)
def test_staff_and_superuser_from_groups(groups, is_staff, is_superuser, staff_field):
    result = profile(groups=groups)
    assert (result.is_staff, result.is_superuser) == (is_staff, is_superuser)
    fields = result.user_fields()
    assert fields["is_staff"] is staff_field
    assert fields["is_superuser"] is is_superuser


# --- email ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "verified"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        (True, True),
        ("false", False),
        (False, False),
        (None, False),
        ("yes", False),
        (1, False),
        ("", False),
    ],
)
def test_email_verified(value, verified):
    assert profile(email="a@example.com", email_verified=value).email_verified is verified


def test_email_is_lowercased_and_stripped():
    assert profile(email="  Alice@Example.COM ").email == "alice@example.com"


@pytest.mark.parametrize("value", [None, 5, ["a@example.com"]])
def test_email_not_a_string_is_empty(value):
    assert profile(email=value).email == ""


# --- names ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claims", "first", "last"),
    [
        ({"given_name": "Alice", "family_name": "Liddell", "name": "X Y"}, "Alice", "Liddell"),
        ({"given_name": "Alice", "name": "X Y"}, "Alice", ""),
        ({"family_name": "Liddell"}, "", "Liddell"),
        ({"name": "Alice Pleasance Liddell"}, "Alice", "Pleasance Liddell"),
        ({"name": "Cher"}, "Cher", ""),
        ({"name": "  Alice   Liddell "}, "Alice", "Liddell"),
        ({}, "", ""),
        ({"given_name": 3, "name": "Bob Jones"}, "Bob", "Jones"),
    ],
    ids=[
        "given-and-family",
        "given-only",
        "family-only",
        "split-name",
        "single-word-name",
        "name-with-spaces",
        "nothing",
        "non-string-given",
    ],
)
def test_names_from_given_and_family_name_else_split_name(claims, first, last):
    result = profile(**claims)
    assert (result.first_name, result.last_name) == (first, last)


@pytest.mark.parametrize(
    ("claims", "field", "limit"),
    [
        ({"given_name": "g" * 400}, "first_name", 150),
        ({"family_name": "f" * 400}, "last_name", 150),
        ({"name": "n" * 400}, "first_name", 150),
        ({"name": "n " + "m" * 400}, "last_name", 150),
        ({"email": "e" * 300 + "@example.com"}, "email", 254),
    ],
    ids=["given", "family", "name-first", "name-last", "email"],
)
def test_long_values_are_truncated(claims, field, limit):
    value = getattr(profile(**claims), field)
    assert len(value) == limit


@pytest.mark.parametrize(
    ("sub", "subject"),
    [
        ("s" * 255, "s" * 255),
        ("s" * 256, ""),
        (" padded", ""),
        ("padded ", ""),
        (12345, ""),
        ("", ""),
    ],
    ids=["255-kept", "too-long", "leading-space", "trailing-space", "number", "empty"],
)
def test_subject_is_kept_exactly_or_refused_never_trimmed(sub, subject):
    assert profile(sub=sub).subject == subject


def test_mapping_is_pure_and_does_not_change_the_claims():
    claims = {"sub": "s", "groups": ["/app-a"], "email": "A@X.ORG"}
    snapshot = {k: (list(v) if isinstance(v, list) else v) for k, v in claims.items()}
    map_claims(claims, POLICY)
    assert claims == snapshot


# --- changes to apply (shared by sign-in and directory sync) --------------------------------
def test_field_changes_are_the_fields_that_differ_with_their_new_values():
    alice = profile(given_name="Alice", family_name="L", email="A@x.org", groups=["app-staff"])
    current = {**alice.user_fields(), "last_name": "Old", "is_staff": False, "extra": 1}

    assert field_changes(current, alice) == {"last_name": "L", "is_staff": True}
    assert field_changes(alice.user_fields(), alice) == {}
    assert list(field_changes({}, alice)) == list(alice.user_fields())  # in field order


@pytest.mark.parametrize(
    ("current", "wanted", "to_add", "to_remove"),
    [
        ({"app-a", "local"}, {"app-a", "app-b"}, {"app-b"}, set()),
        ({"app-a", "app-b", "local"}, set(), set(), {"app-a", "app-b"}),
        ({"editors", "app-a"}, {"app-a"}, set(), {"editors"}),
        (set(), {"app-a"}, {"app-a"}, set()),
        ({"app-a"}, {"app-a"}, set(), set()),
    ],
    ids=["add", "remove-managed-keep-local", "allow-listed-is-managed", "from-none", "same"],
)
def test_group_changes_touch_only_groups_the_policy_manages(current, wanted, to_add, to_remove):
    policy = ClaimPolicy(groups_prefix="app-", groups_allowlist=("editors",))

    assert group_changes(current, frozenset(wanted), policy) == (to_add, to_remove)


def test_group_changes_without_a_policy_never_remove_anything():
    assert group_changes({"app-a", "local"}, frozenset(), ClaimPolicy()) == (set(), set())
