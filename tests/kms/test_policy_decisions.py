"""PolicyCache.decide remembers decisions and always agrees with KeyPolicy.evaluate."""

import json

from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.authz.policy import Decision, PolicyCache, Request, parse_policy

ACCOUNTS = ("111122223333", "444455556666")
PRINCIPALS = (
    "*",
    *(f"arn:aws:iam::{a}:{p}" for a in ACCOUNTS for p in ("root", "user/alice", "role/app")),
)
CALLERS = tuple(
    (f"arn:aws:iam::{a}:user/{u}", a) for a in ACCOUNTS for u in ("alice", "bob")
) + tuple((f"arn:aws:sts::{a}:assumed-role/app/s1", a) for a in ACCOUNTS)
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RESOURCES = ("*", KEY_ARN, "arn:aws:kms:us-east-1:111122223333:key/other")
ACTIONS = ("kms:*", "kms:Decrypt", "kms:Encrypt", "kms:Gen*", "kms:Re?ncrypt*")
CONDITIONS = (
    {"StringEquals": {"kms:EncryptionContext:app": "payroll"}},
    {"StringEquals": {"kms:CallerAccount": ACCOUNTS[0]}},
    {"Null": {"kms:EncryptionContextKeys": "true"}},
)

statements = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Principal": st.sampled_from(PRINCIPALS).map(lambda p: "*" if p == "*" else {"AWS": p}),
        "Action": st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2),
        "Resource": st.sampled_from(RESOURCES),
    },
    optional={"Condition": st.sampled_from(CONDITIONS)},
)
policies = st.lists(statements, min_size=1, max_size=4).map(
    lambda s: json.dumps({"Version": "2012-10-17", "Statement": s})
)
requests = st.tuples(
    st.sampled_from(CALLERS),
    st.sampled_from(["Decrypt", "Encrypt", "GenerateDataKey", "ReEncryptFrom"]),
    st.sampled_from([KEY_ARN, RESOURCES[2]]),
    st.none() | st.sampled_from([{}, {"app": "payroll"}, {"APP": "other"}]),
)


@given(policies, st.lists(requests, min_size=1, max_size=12))
def test_decide_agrees_with_evaluate_every_time(
    text: str, asked: list[tuple[tuple[str, str], str, str, dict[str, str] | None]]
) -> None:
    cache = PolicyCache()
    policy = parse_policy(text)
    for _ in range(2):  # the second round answers from remembered decisions
        for (principal_arn, account), action, resource, context in asked:
            expected = policy.evaluate(Request(principal_arn, account, action, resource, context))
            decided = cache.decide(text, principal_arn, account, action, resource, context)
            assert decided is expected


def test_an_unparseable_policy_decides_nothing() -> None:
    cache = PolicyCache()
    for _ in range(2):
        assert cache.decide(
            "{", "arn:aws:iam::111122223333:root", ACCOUNTS[0], "Decrypt", KEY_ARN
        ) is (Decision.NONE)


def test_a_deny_is_remembered_as_a_deny() -> None:
    text = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
            ]
        }
    )
    cache = PolicyCache()
    for _ in range(3):
        assert cache.decide(text, *CALLERS[0], "Decrypt", KEY_ARN) is Decision.DENY
        assert cache.decide(text, *CALLERS[0], "Encrypt", KEY_ARN) is Decision.ALLOW
