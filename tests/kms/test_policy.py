"""Key policies: the parser and evaluator (pure), and how the key service enforces them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import (
    AccessDeniedError,
    LimitExceededError,
    MalformedPolicyDocumentError,
)
from strongroom.kms import Caller, KeyService
from strongroom.kms.authz.policy import (
    MAX_POLICY_BYTES,
    Decision,
    PolicyCache,
    Request,
    glob_match,
    parse_policy,
)
from strongroom.kms.authz.principals import principal_covers
from strongroom.kms.ops.keys import default_policy

ACCOUNT = "111122223333"
OTHER = "444455556666"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stmt(
    effect: str = "Allow", principal: Any = None, action: Any = "kms:*", **more: Any
) -> dict[str, Any]:
    out = {
        "Effect": effect,
        "Principal": {"AWS": ALICE} if principal is None else principal,
        "Action": action,
        "Resource": "*",
    }
    out.update(more)
    return out


def ask(
    policy: str,
    action: str = "Decrypt",
    who: str = ALICE,
    account: str = ACCOUNT,
    context: dict[str, str] | None = None,
    extra: dict[str, tuple[str, ...]] | None = None,
) -> Decision:
    request = Request(who, account, action, KEY, context, extra or {})
    return parse_policy(policy).evaluate(request)


# -- evaluation ----------------------------------------------------------------------------


def test_default_policy_allows_the_whole_account() -> None:
    policy = default_policy(ACCOUNT)
    assert ask(policy, who=ALICE) is Decision.ALLOW
    assert ask(policy, "PutKeyPolicy", who=f"arn:aws:iam::{ACCOUNT}:role/app") is Decision.ALLOW
    assert ask(policy, who=f"arn:aws:iam::{OTHER}:user/x", account=OTHER) is Decision.NONE


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("kms:*", ["Decrypt", "PutKeyPolicy", "CreateGrant"], []),
        ("*", ["Decrypt", "ScheduleKeyDeletion"], []),
        ("kms:Encrypt*", ["Encrypt"], ["Decrypt", "ReEncryptTo"]),
        ("kms:ReEncrypt*", ["ReEncryptFrom", "ReEncryptTo"], ["Encrypt"]),
        (
            "kms:*DataKey*",
            ["GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair"],
            ["Decrypt", "DescribeKey"],
        ),
        ("KMS:decrypt", ["Decrypt"], ["Encrypt"]),  # actions ignore case
        ("kms:?ecrypt", ["Decrypt"], ["Encrypt"]),
        ("kms:Describe*", ["DescribeKey"], ["Decrypt"]),
    ],
)
def test_action_wildcards(pattern: str, yes: list[str], no: list[str]) -> None:
    policy = doc(stmt(action=pattern))
    for action in yes:
        assert ask(policy, action) is Decision.ALLOW, action
    for action in no:
        assert ask(policy, action) is Decision.NONE, action


def test_not_action_and_list_of_actions() -> None:
    statement = {k: v for k, v in stmt().items() if k != "Action"}
    policy = doc(statement | {"NotAction": ["kms:Decrypt", "kms:Put*"]})
    assert ask(policy, "Encrypt") is Decision.ALLOW
    assert ask(policy, "Decrypt") is Decision.NONE
    assert ask(policy, "PutKeyPolicy") is Decision.NONE
    listed = doc(stmt(action=["kms:Encrypt", "kms:Decrypt"]))
    assert ask(listed, "Decrypt") is Decision.ALLOW
    assert ask(listed, "GenerateDataKey") is Decision.NONE


def test_deny_wins_over_allow() -> None:
    policy = doc(
        stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        stmt("Deny", principal={"AWS": BOB}, action="kms:Decrypt"),
    )
    assert ask(policy, "Decrypt", who=ALICE) is Decision.ALLOW
    assert ask(policy, "Decrypt", who=BOB) is Decision.DENY
    assert ask(policy, "Encrypt", who=BOB) is Decision.ALLOW


def test_principals() -> None:
    everyone = doc(stmt(principal="*"))
    assert ask(everyone, who=BOB) is Decision.ALLOW
    assert ask(doc(stmt(principal={"AWS": "*"})), who=BOB) is Decision.ALLOW
    by_id = doc(stmt(principal={"AWS": ACCOUNT}))
    assert ask(by_id, who=BOB) is Decision.ALLOW
    assert ask(by_id, who=f"arn:aws:iam::{OTHER}:user/bob", account=OTHER) is Decision.NONE
    users = doc(stmt(principal={"AWS": [ALICE]}))
    assert ask(users, who=ALICE) is Decision.ALLOW
    assert ask(users, who=BOB) is Decision.NONE
    role = doc(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/app"}))
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
    assert ask(role, who=session) is Decision.ALLOW
    assert ask(role, who=f"arn:aws:sts::{ACCOUNT}:assumed-role/other/s1") is Decision.NONE
    service = doc(stmt(principal={"Service": "logs.amazonaws.com"}))
    assert ask(service, who=ALICE) is Decision.NONE  # no request comes from an AWS service


def test_not_principal() -> None:
    allow_all = stmt(principal={"AWS": ACCOUNT})
    deny_others = {k: v for k, v in stmt("Deny").items() if k != "Principal"}
    deny_others["NotPrincipal"] = {"AWS": ALICE}
    policy = doc(allow_all, deny_others)
    assert ask(policy, who=ALICE) is Decision.ALLOW
    assert ask(policy, who=BOB) is Decision.DENY


def test_resource() -> None:
    assert ask(doc(stmt() | {"Resource": KEY})) is Decision.ALLOW
    assert ask(doc(stmt() | {"Resource": [f"arn:aws:kms:*:{ACCOUNT}:key/*"]})) is Decision.ALLOW
    assert (
        ask(doc(stmt() | {"Resource": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*"})) is Decision.NONE
    )


def cond(block: dict[str, Any], effect: str = "Allow") -> str:
    return doc(stmt(effect, Condition=block))


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        ({"StringEquals": {"kms:EncryptionContext:app": "a"}}, {"app": "a"}, True),
        ({"StringEquals": {"kms:EncryptionContext:app": "a"}}, {"APP": "a"}, True),
        ({"StringEquals": {"KMS:encryptioncontext:App": "a"}}, {"app": "a"}, True),
        ({"StringEquals": {"kms:EncryptionContext:app": "a"}}, {"app": "A"}, False),
        ({"StringEquals": {"kms:EncryptionContext:app": "a"}}, {}, False),
        ({"StringEquals": {"kms:EncryptionContext:app": ["a", "b"]}}, {"app": "b"}, True),
        ({"StringEqualsIgnoreCase": {"kms:EncryptionContext:app": "a"}}, {"app": "A"}, True),
        ({"StringLike": {"kms:EncryptionContext:path": "/home/*"}}, {"path": "/home/x"}, True),
        ({"StringLike": {"kms:EncryptionContext:path": "/home/*"}}, {"path": "/etc/x"}, False),
        ({"StringNotEquals": {"kms:EncryptionContext:app": "a"}}, {"app": "b"}, True),
        ({"StringNotEquals": {"kms:EncryptionContext:app": "a"}}, {"app": "a"}, False),
        ({"StringNotEquals": {"kms:EncryptionContext:app": "a"}}, {}, True),  # absent key
        ({"StringEqualsIfExists": {"kms:EncryptionContext:app": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"kms:EncryptionContext:app": "a"}}, {"app": "b"}, False),
        ({"Null": {"kms:EncryptionContext:app": "false"}}, {"app": "x"}, True),
        ({"Null": {"kms:EncryptionContext:app": "false"}}, {}, False),
        ({"Null": {"kms:EncryptionContext:app": True}}, {}, True),
        (
            {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["app", "doc"]}},
            {"doc": "1", "x": "2"},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "app"}}, {}, False),
        (
            {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "doc"]}},
            {"doc": "1", "app": "2"},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "doc"]}},
            {"doc": "1", "x": "2"},
            False,
        ),
        ({"StringEquals": {"kms:CallerAccount": ACCOUNT}}, {}, True),
        ({"StringEquals": {"kms:CallerAccount": OTHER}}, {}, False),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/a*"}}, {}, True),
        ({"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, {}, False),
        ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, {}, False),
        (  # several operators and keys: all must hold
            {
                "StringEquals": {"kms:EncryptionContext:app": "a", "kms:CallerAccount": ACCOUNT},
                "StringLike": {"kms:EncryptionContext:doc": "d*"},
            },
            {"app": "a", "doc": "d1"},
            True,
        ),
        (
            {
                "StringEquals": {"kms:EncryptionContext:app": "a"},
                "StringLike": {"kms:EncryptionContext:doc": "d*"},
            },
            {"app": "a", "doc": "x"},
            False,
        ),
    ],
)
def test_conditions(block: dict[str, Any], context: dict[str, str], expected: bool) -> None:
    want = Decision.ALLOW if expected else Decision.NONE
    assert ask(cond(block), context=context) is want


def test_context_keys_differing_only_by_case_are_read_safely() -> None:
    context = {"app": "a", "APP": "evil"}
    allow = cond({"StringEquals": {"kms:EncryptionContext:app": "a"}})
    assert ask(allow, context=context) is Decision.NONE  # every value must match to allow
    deny = doc(
        stmt(principal={"AWS": ACCOUNT}),
        stmt("Deny", Condition={"StringEquals": {"kms:EncryptionContext:app": "evil"}}),
    )
    assert ask(deny, context=context) is Decision.DENY  # any value may trigger a deny


def test_grant_condition_keys() -> None:
    policy = cond({"StringEquals": {"kms:GranteePrincipal": BOB}})
    assert ask(policy, "CreateGrant", extra={"kms:granteeprincipal": (BOB,)}) is Decision.ALLOW
    assert ask(policy, "CreateGrant", extra={"kms:granteeprincipal": (ALICE,)}) is Decision.NONE
    ops = cond({"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "Encrypt"]}})
    assert ask(ops, "CreateGrant", extra={"kms:grantoperations": ("Decrypt",)}) is Decision.ALLOW
    assert (
        ask(ops, "CreateGrant", extra={"kms:grantoperations": ("Decrypt", "CreateGrant")})
        is Decision.NONE
    )


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("a*b", "ab", True),
        ("a*b", "axxb", True),
        ("a*b", "axxbc", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("*a*a*a*a*a*a*a*a*a*a*b", "a" * 2000, False),  # no catastrophic backtracking
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


@given(st.text("ab*?", max_size=8), st.text("ab", max_size=10))
def test_glob_agrees_with_a_regex(pattern: str, text: str) -> None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert glob_match(pattern, text) is (re.fullmatch(regex, text, re.DOTALL) is not None)


def test_principal_covers() -> None:
    assert principal_covers(ALICE, ALICE, ACCOUNT)
    assert not principal_covers(BOB, ALICE, ACCOUNT)
    assert principal_covers(f"arn:aws:iam::{ACCOUNT}:root", ALICE, ACCOUNT)
    assert principal_covers(ACCOUNT, ALICE, ACCOUNT)
    assert not principal_covers(f"arn:aws:iam::{OTHER}:root", ALICE, ACCOUNT)
    assert not principal_covers("*", ALICE, ACCOUNT)
    assert not principal_covers("garbage", ALICE, ACCOUNT)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("NaN", "not a JSON value"),
        (json.dumps({"Version": "2012-10-17"}), "no Statement"),
        (json.dumps({"Statement": []}), "no Statement"),
        (json.dumps({"Version": "2020-01-01", "Statement": [stmt()]}), "Version"),
        (json.dumps({"Statement": [stmt()], "Extra": 1}), "unknown element"),
        (doc(stmt() | {"Effect": "allow"}), "Effect"),
        (doc(stmt() | {"Colour": "red"}), "unknown element 'Colour'"),
        (doc({k: v for k, v in stmt().items() if k != "Principal"}), "Principal"),
        (doc({k: v for k, v in stmt().items() if k != "Action"}), "Action"),
        (doc({k: v for k, v in stmt().items() if k != "Resource"}), "Resource"),
        (doc(stmt() | {"NotResource": "*"}), "NotResource"),
        (doc(stmt(action="s3:GetObject")), "not a KMS action"),
        (doc(stmt(action=[])), "Action"),
        (doc(stmt(action=[1])), "Action"),
        (doc(stmt() | {"Resource": "arn:aws:s3:::bucket"}), "Resource"),
        (doc(stmt(principal={"AWS": "arn:aws:iam::123:user/x"})), "invalid principals"),
        (doc(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"})), "invalid principals"),
        (doc(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:group/g"})), "invalid principals"),
        (doc(stmt(principal={"Federated": "cognito-identity.amazonaws.com"})), "Federated"),
        (doc(stmt(principal="root")), "Principal"),
        (doc(stmt(Condition={"NumericEquals": {"kms:CallerAccount": "1"}})), "operator"),
        (doc(stmt(Condition={"StringEquals": {"aws:SourceIp": "1.2.3.4"}})), "aws:SourceIp"),
        (doc(stmt(Condition={"StringEquals": {"kms:EncryptionContext:": "x"}})), "key"),
        (doc(stmt(Condition={"StringEquals": {"kms:CallerAccount": []}})), "value"),
        (doc(stmt(Condition={"StringEquals": {"kms:CallerAccount": {"a": 1}}})), "values"),
        (doc(stmt(Condition={"Bool": {"kms:GrantIsForAWSResource": "maybe"}})), "true or false"),
        (doc(stmt(Condition={"NullIfExists": {"kms:CallerAccount": "true"}})), "operator"),
        (doc(stmt(Condition="x")), "Condition"),
        ('{"Statement": [], "Statement": []}', "twice"),
        ("[" * 16_000 + "]" * 16_000, "not valid JSON"),  # too deep, yet under 32 KiB
    ],
)
def test_malformed(text: str, fragment: str) -> None:
    with pytest.raises(MalformedPolicyDocumentError) as caught:
        parse_policy(text)
    assert fragment in str(caught.value)


def test_single_statement_object_and_2008_version() -> None:
    text = json.dumps({"Version": "2008-10-17", "Id": "x", "Statement": stmt(Sid="one")})
    assert ask(text) is Decision.ALLOW


def test_size_limit() -> None:
    padding = "x" * (MAX_POLICY_BYTES - len(doc(stmt(Sid=""))))
    fits = doc(stmt(Sid=padding))
    assert len(fits.encode()) == MAX_POLICY_BYTES
    parse_policy(fits)
    with pytest.raises(LimitExceededError):
        parse_policy(doc(stmt(Sid=padding + "x")))


def test_cache_remembers_results() -> None:
    cache = PolicyCache(max_entries=2)
    good = doc(stmt())
    assert cache.get(good) is cache.get(good)
    for _ in range(2):
        with pytest.raises(MalformedPolicyDocumentError):
            cache.get("{")
    cache.get(doc(stmt(Sid="a")))
    cache.get(doc(stmt(Sid="b")))
    assert "entries=2" in repr(cache)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
statement_members = st.sampled_from(
    ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "Condition"]
)
plausible = st.dictionaries(
    statement_members,
    st.one_of(
        json_values,
        st.sampled_from(["Allow", "Deny", "*", "kms:*", ACCOUNT, ALICE]),
        st.just({"AWS": ALICE}),
        st.just({"StringEquals": {"kms:EncryptionContext:a": "b"}}),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"Statement": st.lists(plausible, max_size=3)}),
        st.fixed_dictionaries({"Version": st.just("2012-10-17"), "Statement": plausible}),
    )
)
def test_random_json_is_accepted_or_malformed(value: Any) -> None:
    try:
        policy = parse_policy(json.dumps(value))
    except MalformedPolicyDocumentError as exc:
        assert exc.message
        return
    decision = policy.evaluate(Request(ALICE, ACCOUNT, "Decrypt", KEY, {"a": "b"}))
    assert decision in (Decision.ALLOW, Decision.DENY, Decision.NONE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_is_accepted_or_malformed(text: str) -> None:
    try:
        policy = parse_policy(text)
    except MalformedPolicyDocumentError as exc:
        assert exc.message
    else:
        assert policy.statements


# -- the key service enforces key policies -------------------------------------------------


def principal(service: KeyService, account: str, name: str) -> Caller:
    record, _ = service.create_access_key(account, user_name=name)
    access = service.lookup_access_key(record.access_key_id)
    assert access is not None
    return access.caller


def policy_for(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(who: str | list[str], action: Any = "kms:*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": who}, "Action": action, "Resource": "*", **more}


def test_key_policy_enforced(service: KeyService, alice: Caller) -> None:
    carol = principal(service, alice.tenant, "carol")
    text = policy_for(
        allow(alice.principal_arn),
        allow(carol.principal_arn, ["kms:Encrypt", "kms:Describe*"]),
    )
    key = service.call(alice, "CreateKey", {"Policy": text})["KeyMetadata"]
    assert service.call(alice, "GetKeyPolicy", {"KeyId": key["KeyId"]})["Policy"] == text
    service.call(carol, "Encrypt", {"KeyId": key["KeyId"], "Plaintext": b"x"})
    service.call(carol, "DescribeKey", {"KeyId": key["KeyId"]})
    for operation, request in (
        ("GenerateDataKey", {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        ("DisableKey", {"KeyId": key["KeyId"]}),
        ("GetKeyPolicy", {"KeyId": key["KeyId"]}),
        ("PutKeyPolicy", {"KeyId": key["KeyId"], "Policy": default_policy(alice.tenant)}),
    ):
        with pytest.raises(AccessDeniedError) as denied:
            service.call(carol, operation, request)
        assert str(denied.value) == (
            f"User: {carol.principal_arn} is not authorized to perform: kms:{operation} "
            f"on resource: {key['Arn']} because no resource-based policy allows the "
            f"kms:{operation} action"
        )


def test_encryption_context_condition(service: KeyService, alice: Caller) -> None:
    carol = principal(service, alice.tenant, "carol")
    condition = {"StringEquals": {"kms:EncryptionContext:team": "blue"}}
    text = policy_for(
        allow(alice.principal_arn), allow(carol.principal_arn, "kms:Decrypt", Condition=condition)
    )
    key = service.call(alice, "CreateKey", {"Policy": text})["KeyMetadata"]["KeyId"]
    for team, allowed in (("blue", True), ("red", False)):
        context = {"team": team}
        blob = service.call(
            alice, "Encrypt", {"KeyId": key, "Plaintext": b"x", "EncryptionContext": context}
        )["CiphertextBlob"]
        request = {"CiphertextBlob": blob, "EncryptionContext": context}
        if allowed:
            assert service.call(carol, "Decrypt", request)["Plaintext"] == b"x"
        else:
            with pytest.raises(AccessDeniedError):
                service.call(carol, "Decrypt", request)


def test_lockout_safety_check(service: KeyService, alice: Caller) -> None:
    carol = principal(service, alice.tenant, "carol")
    locks_out = policy_for(allow(carol.principal_arn))
    with pytest.raises(MalformedPolicyDocumentError, match="will not allow you to update"):
        service.call(alice, "CreateKey", {"Policy": locks_out})
    key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(MalformedPolicyDocumentError, match="will not allow you to update"):
        service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": locks_out})
    denies_self = policy_for(
        allow(alice.tenant),
        {
            "Effect": "Deny",
            "Principal": {"AWS": alice.principal_arn},
            "Action": "kms:Put*",
            "Resource": "*",
        },
    )
    with pytest.raises(MalformedPolicyDocumentError, match="will not allow you to update"):
        service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": denies_self})
    assert service.call(alice, "GetKeyPolicy", {"KeyId": key})["Policy"] == default_policy(
        alice.tenant
    )
    service.call(
        alice,
        "PutKeyPolicy",
        {"KeyId": key, "Policy": locks_out, "BypassPolicyLockoutSafetyCheck": True},
    )
    with pytest.raises(AccessDeniedError):
        service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": default_policy(alice.tenant)})
    service.call(carol, "PutKeyPolicy", {"KeyId": key, "Policy": default_policy(alice.tenant)})
    bypassed = service.call(
        alice, "CreateKey", {"Policy": locks_out, "BypassPolicyLockoutSafetyCheck": True}
    )
    with pytest.raises(AccessDeniedError):
        service.call(alice, "DescribeKey", {"KeyId": bypassed["KeyMetadata"]["KeyId"]})


def test_malformed_policies_are_refused(service: KeyService, alice: Caller) -> None:
    key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    for text in ("not json", policy_for(allow(alice.principal_arn, "s3:*"))):
        with pytest.raises(MalformedPolicyDocumentError):
            service.call(alice, "CreateKey", {"Policy": text})
        with pytest.raises(MalformedPolicyDocumentError):
            service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": text})
    huge = policy_for(allow(alice.principal_arn, Sid="x" * MAX_POLICY_BYTES))
    with pytest.raises(LimitExceededError):
        service.call(alice, "PutKeyPolicy", {"KeyId": key, "Policy": huge})


def test_alias_changes_need_permission_on_the_keys(service: KeyService, alice: Caller) -> None:
    carol = principal(service, alice.tenant, "carol")
    text = policy_for(allow(alice.principal_arn), allow(carol.principal_arn, "kms:Describe*"))
    key = service.call(alice, "CreateKey", {"Policy": text})["KeyMetadata"]["KeyId"]
    open_key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
    service.call(alice, "CreateAlias", {"AliasName": "alias/app", "TargetKeyId": key})
    with pytest.raises(AccessDeniedError, match="kms:DeleteAlias"):
        service.call(carol, "DeleteAlias", {"AliasName": "alias/app"})
    with pytest.raises(AccessDeniedError, match="kms:UpdateAlias"):
        service.call(carol, "UpdateAlias", {"AliasName": "alias/app", "TargetKeyId": open_key})
    with pytest.raises(AccessDeniedError, match="kms:CreateAlias"):
        service.call(carol, "CreateAlias", {"AliasName": "alias/other", "TargetKeyId": key})
    service.call(alice, "UpdateAlias", {"AliasName": "alias/app", "TargetKeyId": open_key})
    service.call(carol, "DeleteAlias", {"AliasName": "alias/app"})
