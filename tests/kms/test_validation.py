"""Request validation: every limit of the service model, worded as AWS words it.

Two tables: a hand-written one naming the limits users meet (and the service's own limits
that are narrower than the model's), and one generated from the vendored model for every
constrained member of every operation Strongroom implements, so no limit is left out.
Each row sends one violation and expects a ValidationError whose message names the member
and the constraint; each generated row also sends the boundary value and expects no
complaint about that member.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import StrongroomError, ValidationError
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.ops import HANDLERS
from strongroom.kms.wire_model import WireModel
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.service import tenant_caller

KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"  # replaced by a real key id in the fixture
MODEL = WireModel.load()
IMPLEMENTED = sorted(op for op in MODEL.operations if op in HANDLERS)
CORE_MODULES = {
    f"strongroom.kms.ops.{m}" for m in ("crypto", "keys", "rotation", "tags", "aliases", "policy")
}
CORE_OPS = {op for op in IMPLEMENTED if HANDLERS[op].__module__ in CORE_MODULES}


@dataclass
class Env:
    service: KeyService
    caller: Caller
    key_id: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("validation")
    service = KeyService(
        SqliteStore(tmp / "store.db"), LocalRootOfTrust.create(tmp / "master.key"), ManualClock()
    )
    caller = tenant_caller(service, "validation")
    key_id = service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"]
    yield Env(service, caller, key_id)
    service.close()


def _with_key(value: Any, key_id: str) -> Any:
    if value == KEY:
        return key_id
    if isinstance(value, dict):
        return {k: _with_key(v, key_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_key(v, key_id) for v in value]
    return value


def _call(env: Env, operation: str, request: dict[str, Any]) -> StrongroomError | None:
    try:
        env.service.call(env.caller, operation, _with_key(request, env.key_id))
    except StrongroomError as exc:
        return exc
    return None


def _assert_one_violation(
    error: StrongroomError | None, path: str, constraint: str, count: int = 1
) -> None:
    assert isinstance(error, ValidationError), error
    message = str(error)
    noun = "error" if count == 1 else "errors"
    assert message.startswith(f"{count} validation {noun} detected: "), message
    assert f"'{path}'" in message, message
    assert constraint in message, message


# -- the hand-written table ----------------------------------------------------------------------

GE = "Member must have length greater than or equal to"
LE = "Member must have length less than or equal to"
VGE = "Member must have value greater than or equal to"
VLE = "Member must have value less than or equal to"
TAG = [{"TagKey": "k", "TagValue": "v"}]

EXPLICIT: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (id, operation, request, member path, constraint text)
    ("plaintext-0", "Encrypt", {"KeyId": KEY, "Plaintext": b""}, "plaintext", f"{GE} 1"),
    (
        "plaintext-4097",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": bytes(4097)},
        "plaintext",
        f"{LE} 4096",
    ),
    ("plaintext-null", "Encrypt", {"KeyId": KEY}, "plaintext", "Member must not be null"),
    ("keyid-null", "Encrypt", {"Plaintext": b"x"}, "keyId", "Member must not be null"),
    ("keyid-0", "Encrypt", {"KeyId": "", "Plaintext": b"x"}, "keyId", f"{GE} 1"),
    ("keyid-2049", "DescribeKey", {"KeyId": "k" * 2049}, "keyId", f"{LE} 2048"),
    ("ciphertext-0", "Decrypt", {"CiphertextBlob": b""}, "ciphertextBlob", f"{GE} 1"),
    (
        "ciphertext-6145",
        "Decrypt",
        {"CiphertextBlob": bytes(6145)},
        "ciphertextBlob",
        f"{LE} 6144",
    ),
    ("random-0", "GenerateRandom", {"NumberOfBytes": 0}, "numberOfBytes", f"{VGE} 1"),
    ("random-1025", "GenerateRandom", {"NumberOfBytes": 1025}, "numberOfBytes", f"{VLE} 1024"),
    (
        "datakey-bytes-0",
        "GenerateDataKey",
        {"KeyId": KEY, "NumberOfBytes": 0},
        "numberOfBytes",
        f"{VGE} 1",
    ),
    (
        "datakey-bytes-1025",
        "GenerateDataKeyWithoutPlaintext",
        {"KeyId": KEY, "NumberOfBytes": 1025},
        "numberOfBytes",
        f"{VLE} 1024",
    ),
    (
        "datakey-spec",
        "GenerateDataKey",
        {"KeyId": KEY, "KeySpec": "AES_512"},
        "keySpec",
        "Member must satisfy enum value set: [AES_256, AES_128]",
    ),
    (
        "key-spec",
        "CreateKey",
        {"KeySpec": "AES_256"},
        "keySpec",
        "Member must satisfy enum value set: [RSA_2048",
    ),
    ("key-usage", "CreateKey", {"KeyUsage": "DECRYPT"}, "keyUsage", "enum value set"),
    ("origin", "CreateKey", {"Origin": "HSM"}, "origin", "enum value set"),
    (
        "algorithm",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": b"x", "EncryptionAlgorithm": "AES_GCM"},
        "encryptionAlgorithm",
        "enum value set: [SYMMETRIC_DEFAULT",
    ),
    (
        "alias-pattern",
        "CreateAlias",
        {"AliasName": "alias/a b", "TargetKeyId": KEY},
        "aliasName",
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    ),
    (
        "alias-colon",
        "CreateAlias",
        {"AliasName": "alias/a:b", "TargetKeyId": KEY},
        "aliasName",
        "Member must satisfy regular expression pattern: alias/[a-zA-Z0-9/_-]+",
    ),
    (
        "alias-257",
        "CreateAlias",
        {"AliasName": "alias/" + "a" * 251, "TargetKeyId": KEY},
        "aliasName",
        f"{LE} 256",
    ),
    (
        "description-8193",
        "CreateKey",
        {"Description": "d" * 8193},
        "description",
        f"{LE} 8192",
    ),
    (
        "update-description-8193",
        "UpdateKeyDescription",
        {"KeyId": KEY, "Description": "d" * 8193},
        "description",
        f"{LE} 8192",
    ),
    (
        "tag-key-0",
        "TagResource",
        {"KeyId": KEY, "Tags": [{"TagKey": "", "TagValue": "v"}]},
        "tags.1.member.tagKey",
        f"{GE} 1",
    ),
    (
        "tag-key-129",
        "CreateKey",
        {"Tags": [*TAG, {"TagKey": "k" * 129, "TagValue": "v"}]},
        "tags.2.member.tagKey",
        f"{LE} 128",
    ),
    (
        "tag-value-257",
        "TagResource",
        {"KeyId": KEY, "Tags": [{"TagKey": "k", "TagValue": "v" * 257}]},
        "tags.1.member.tagValue",
        f"{LE} 256",
    ),
    (
        "tag-value-null",
        "TagResource",
        {"KeyId": KEY, "Tags": [{"TagKey": "k"}]},
        "tags.1.member.tagValue",
        "Member must not be null",
    ),
    (
        "untag-key-129",
        "UntagResource",
        {"KeyId": KEY, "TagKeys": ["k" * 129]},
        "tagKeys.1.member",
        f"{LE} 128",
    ),
    (
        "grant-tokens-11",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": b"x", "GrantTokens": ["t"] * 11},
        "grantTokens",
        f"{LE} 10",
    ),
    (
        "grant-token-0",
        "Decrypt",
        {"CiphertextBlob": b"x", "GrantTokens": [""]},
        "grantTokens.1.member",
        f"{GE} 1",
    ),
    (
        "grant-token-8193",
        "GenerateDataKey",
        {"KeyId": KEY, "KeySpec": "AES_256", "GrantTokens": ["t" * 8193]},
        "grantTokens.1.member",
        f"{LE} 8192",
    ),
    ("list-keys-limit-0", "ListKeys", {"Limit": 0}, "limit", f"{VGE} 1"),
    ("list-keys-limit-1001", "ListKeys", {"Limit": 1001}, "limit", f"{VLE} 1000"),
    ("list-aliases-limit-0", "ListAliases", {"Limit": 0}, "limit", f"{VGE} 1"),
    (
        "list-tags-limit-1001",
        "ListResourceTags",
        {"KeyId": KEY, "Limit": 1001},
        "limit",
        f"{VLE} 1000",
    ),
    (
        "list-rotations-limit-0",
        "ListKeyRotations",
        {"KeyId": KEY, "Limit": 0},
        "limit",
        f"{VGE} 1",
    ),
    ("marker-0", "ListKeys", {"Marker": ""}, "marker", f"{GE} 1"),
    ("marker-1025", "ListAliases", {"Marker": "m" * 1025}, "marker", f"{LE} 1024"),
    ("marker-pattern", "ListKeys", {"Marker": "k:\u0100"}, "marker", "regular expression"),
    (
        "window-model-0",
        "ScheduleKeyDeletion",
        {"KeyId": KEY, "PendingWindowInDays": 0},
        "pendingWindowInDays",
        f"{VGE} 1",
    ),
    (
        "window-6",
        "ScheduleKeyDeletion",
        {"KeyId": KEY, "PendingWindowInDays": 6},
        "pendingWindowInDays",
        "Member must have value between 7 and 30",
    ),
    (
        "window-31",
        "ScheduleKeyDeletion",
        {"KeyId": KEY, "PendingWindowInDays": 31},
        "pendingWindowInDays",
        "Member must have value between 7 and 30",
    ),
    (
        "rotation-89",
        "EnableKeyRotation",
        {"KeyId": KEY, "RotationPeriodInDays": 89},
        "rotationPeriodInDays",
        f"{VGE} 90",
    ),
    (
        "rotation-2561",
        "EnableKeyRotation",
        {"KeyId": KEY, "RotationPeriodInDays": 2561},
        "rotationPeriodInDays",
        f"{VLE} 2560",
    ),
    (
        "policy-pattern",
        "PutKeyPolicy",
        {"KeyId": KEY, "Policy": "{\u0100}"},
        "policy",
        "regular expression",
    ),
    (
        "policy-name-pattern",
        "GetKeyPolicy",
        {"KeyId": KEY, "PolicyName": "de-fault"},
        "policyName",
        "regular expression",
    ),
    ("policy-null", "PutKeyPolicy", {"KeyId": KEY}, "policy", "Member must not be null"),
    (
        "custom-key-store-65",
        "GenerateRandom",
        {"NumberOfBytes": 1, "CustomKeyStoreId": "c" * 65},
        "customKeyStoreId",
        f"{LE} 64",
    ),
    ("xks-pattern", "CreateKey", {"XksKeyId": "a b"}, "xksKeyId", "regular expression"),
    (
        "dry-run-modifier",
        "Decrypt",
        {"CiphertextBlob": b"x", "DryRunModifiers": ["IGNORE_ALL"]},
        "dryRunModifiers.1.member",
        "enum value set: [IGNORE_CIPHERTEXT]",
    ),
    # types
    ("bytes-type", "GenerateRandom", {"NumberOfBytes": "32"}, "numberOfBytes", "be an integer"),
    ("bool-not-int", "GenerateRandom", {"NumberOfBytes": True}, "numberOfBytes", "an integer"),
    ("blob-type", "Encrypt", {"KeyId": KEY, "Plaintext": "text"}, "plaintext", "binary data"),
    (
        "context-value-type",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": b"x", "EncryptionContext": {"a": 1}},
        "encryptionContext.a.value",
        "be a string",
    ),
    (
        "context-type",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": b"x", "EncryptionContext": ["a"]},
        "encryptionContext",
        "be a map",
    ),
    (
        "dry-run-type",
        "Encrypt",
        {"KeyId": KEY, "Plaintext": b"x", "DryRun": "yes"},
        "dryRun",
        "be a boolean",
    ),
    ("list-type", "UntagResource", {"KeyId": KEY, "TagKeys": "k"}, "tagKeys", "be a list"),
    ("string-type", "DescribeKey", {"KeyId": 7}, "keyId", "be a string"),
]


@pytest.mark.parametrize(
    ("operation", "request_", "path", "constraint"),
    [row[1:] for row in EXPLICIT],
    ids=[row[0] for row in EXPLICIT],
)
def test_explicit_limits(
    env: Env, operation: str, request_: dict[str, Any], path: str, constraint: str
) -> None:
    _assert_one_violation(_call(env, operation, request_), path, constraint)


def test_every_violation_is_reported_at_once(env: Env) -> None:
    error = _call(env, "Encrypt", {"KeyId": "", "Plaintext": b"", "GrantTokens": ["t"] * 11})
    assert isinstance(error, ValidationError)
    message = str(error)
    assert message.startswith("3 validation errors detected: ")
    for path in ("keyId", "plaintext", "grantTokens"):
        assert f"'{path}'" in message


def test_validation_messages_hold_no_values(env: Env) -> None:
    secret = b"p" * 5000
    error = _call(env, "Encrypt", {"KeyId": KEY, "Plaintext": secret})
    assert isinstance(error, ValidationError)
    assert "ppp" not in str(error)


# -- the table generated from the model --------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    operation: str
    member_chain: tuple[str, ...]  # model member names; "[]" for a list member
    path: str  # as AWS names it in the message
    bad: Any
    good: Any
    constraint: str
    count: int = 1  # an empty string can break the length and the pattern at once


def _lower(name: str) -> str:
    return name[:1].lower() + name[1:]


def _valid(shape_name: str) -> Any:
    """A small value that satisfies ``shape_name`` (its required members filled)."""
    shape = MODEL.shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        return {m: _valid(shape["members"][m]["shape"]) for m in shape.get("required", [])}
    if kind == "string":
        if "enum" in shape:
            return shape["enum"][0]
        return _string(shape, max(shape.get("min", 1), 1))
    if kind == "blob":
        return b"x" * max(shape.get("min", 1), 1)
    if kind == "integer":
        return shape.get("min", 1)
    if kind == "boolean":
        return False
    if kind == "list":
        return []
    if kind == "map":
        return {}
    raise AssertionError(kind)


_FILLERS = "aA0_-/k "


def _string(shape: dict[str, Any], length: int) -> str:
    """A string of ``length`` characters that satisfies the shape's pattern."""
    pattern = shape.get("pattern")
    if shape is MODEL.shapes["RegionType"]:  # letters and dashes, then digits
        return "us-east-" + "1" * max(length - len("us-east-"), 1)
    for filler in _FILLERS:
        prefix = next((p for shaped, p in _PREFIXED if shape is shaped), None)
        if prefix is not None:  # no single repeated character fits these patterns
            candidate = prefix + "a" * max(length - len(prefix), 1)
        else:
            candidate = filler * length
        if pattern is None or re.fullmatch(pattern, candidate):
            return candidate
    raise AssertionError(f"no filler satisfies {pattern}")


_PREFIXED = [
    (MODEL.shapes["AliasNameType"], "alias/"),
    (MODEL.shapes["GrantConstraintSourceArnType"], "arn:aws:s::111122223333:"),
    (MODEL.shapes["ServicePrincipalType"], "s.amazonaws."),
]


def _violations(shape: dict[str, Any]) -> Iterator[tuple[Any, Any, str, int]]:
    """``(bad, boundary-good, constraint, count)`` for each constraint of a leaf shape."""
    kind = shape["type"]
    low, high = shape.get("min"), shape.get("max")
    if kind == "string" and "enum" in shape:
        yield "NOT_A_MEMBER_OF_THE_ENUM", shape["enum"][-1], "Member must satisfy enum value set", 1
        return
    if kind == "string":
        pattern = shape.get("pattern")
        if low:
            count = 1 if pattern is None or re.fullmatch(pattern, "") else 2
            yield "", _string(shape, low), f"{GE} {low}", count
        if high is not None:
            yield _string(shape, high + 1), _string(shape, high), f"{LE} {high}", 1
        if pattern is not None:
            for char in ("\u0100", " ", "-", "!"):
                bad = char * max(low or 1, 1)
                if not re.fullmatch(pattern, bad):
                    good = _string(shape, max(low or 1, 1))
                    yield bad, good, f"Member must satisfy regular expression pattern: {pattern}", 1
                    break
    elif kind == "blob":
        if low:
            yield b"", b"x" * low, f"{GE} {low}", 1
        if high is not None:
            yield bytes(high + 1), bytes(high), f"{LE} {high}", 1
    elif kind == "integer":
        if low is not None:
            yield low - 1, low, f"{VGE} {low}", 1
        if high is not None:
            yield high + 1, high, f"{VLE} {high}", 1


def _model_limits() -> Iterator[Limit]:
    for operation in IMPLEMENTED:
        shape_name = MODEL.input_shape(operation)
        if shape_name is None:
            continue
        yield from _walk(operation, shape_name, (), "")


def _walk(operation: str, shape_name: str, chain: tuple[str, ...], path: str) -> Iterator[Limit]:
    shape = MODEL.shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        for member, spec in shape.get("members", {}).items():
            sub = f"{path}.{_lower(member)}" if path else _lower(member)
            yield from _walk(operation, spec["shape"], (*chain, member), sub)
    elif kind == "list":
        item_shape = shape["member"]["shape"]
        if shape.get("max") is not None:
            item = _valid(item_shape)
            yield Limit(
                operation,
                chain,
                path,
                [item] * (shape["max"] + 1),
                [item] * shape["max"],
                f"{LE} {shape['max']}",
            )
        yield from _walk(operation, item_shape, (*chain, "[]"), f"{path}.1.member")
    elif kind in ("string", "blob", "integer"):
        for bad, good, constraint, count in _violations(shape):
            yield Limit(operation, chain, path, bad, good, constraint, count)


def _place(shape_name: str, base: Any, chain: tuple[str, ...], value: Any) -> Any:
    """Return ``base`` (a valid value of ``shape_name``) with ``value`` put at ``chain``."""
    if not chain:
        return value
    shape = MODEL.shapes[shape_name]
    head, rest = chain[0], chain[1:]
    if shape["type"] == "list":
        assert head == "[]"
        item_shape = shape["member"]["shape"]
        return [_place(item_shape, _valid(item_shape), rest, value)]
    member_shape = shape["members"][head]["shape"]
    out = dict(base)
    out[head] = _place(member_shape, out.get(head, _valid(member_shape)), rest, value)
    return out


def _request(limit: Limit, value: Any) -> dict[str, Any]:
    """The operation's minimal valid request with ``value`` placed at the member chain."""
    shape_name = MODEL.input_shape(limit.operation)
    assert shape_name is not None
    base: dict[str, Any] = _valid(shape_name)
    for member in ("KeyId", "TargetKeyId", "DestinationKeyId"):
        if member in base:
            base[member] = KEY
    request: dict[str, Any] = _place(shape_name, base, limit.member_chain, value)
    return request


LIMITS = list(_model_limits())


def test_the_generated_table_covers_the_limits_users_meet() -> None:
    covered = {(lim.operation, lim.path, lim.constraint) for lim in LIMITS}
    for operation, path, constraint in [
        ("Encrypt", "plaintext", f"{LE} 4096"),
        ("Encrypt", "plaintext", f"{GE} 1"),
        ("GenerateRandom", "numberOfBytes", f"{VLE} 1024"),
        ("CreateKey", "tags.1.member.tagKey", f"{LE} 128"),
        ("CreateKey", "description", f"{LE} 8192"),
        ("ListKeys", "limit", f"{VLE} 1000"),
        ("Decrypt", "grantTokens", f"{LE} 10"),
        ("EnableKeyRotation", "rotationPeriodInDays", f"{VGE} 90"),
        ("CreateAlias", "aliasName", f"{LE} 256"),
    ]:
        assert (operation, path, constraint) in covered
    assert len(LIMITS) > 150
    assert len(CORE_OPS) >= 29
    assert {lim.operation for lim in LIMITS} >= {"Encrypt", "CreateKey", "ListAliases"}


@pytest.mark.parametrize(
    "limit",
    LIMITS,
    ids=[
        f"{lim.operation}-{lim.path}-{lim.constraint.split()[-1]}-{i}"
        for i, lim in enumerate(LIMITS)
    ],
)
def test_model_limit(env: Env, limit: Limit) -> None:
    error = _call(env, limit.operation, _request(limit, limit.bad))
    _assert_one_violation(error, limit.path, limit.constraint, limit.count)
    if limit.operation not in CORE_OPS:
        return  # the boundary call would run another mixin's handler: tested there
    error = _call(env, limit.operation, _request(limit, limit.good))
    if isinstance(error, ValidationError):
        # The boundary value passes the model; only the service's own, narrower rules may
        # still refuse it, and then they name the member with their own constraint.
        assert limit.constraint not in str(error), str(error)


def test_unknown_keys_do_not_leak_into_validation(env: Env) -> None:
    missing = str(uuid.uuid4())
    error = _call(env, "Encrypt", {"KeyId": missing, "Plaintext": b"x"})
    assert not isinstance(error, ValidationError)


def test_numbers_are_named_in_the_message_but_blobs_never(env: Env) -> None:
    error = _call(env, "EnableKeyRotation", {"KeyId": KEY, "RotationPeriodInDays": 89})
    assert str(error) == (
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy "
        "constraint: Member must have value greater than or equal to 90"
    )
    error = _call(env, "Encrypt", {"KeyId": KEY, "Plaintext": b"secret!" * 600})
    assert isinstance(error, ValidationError)
    assert "secret!" not in str(error) and "Value at 'plaintext'" in str(error)


def test_strings_are_quoted_as_aws_quotes_them_but_tokens_never(env: Env) -> None:
    error = _call(env, "CreateKey", {"KeySpec": "SM3"})
    assert isinstance(error, ValidationError)
    assert str(error).startswith(
        "1 validation error detected: Value 'SM3' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [RSA_2048, "
    )
    error = _call(env, "CreateAlias", {"AliasName": "alias/has space", "TargetKeyId": KEY})
    assert str(error).startswith(
        "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
    )
    error = _call(env, "CreateAlias", {"AliasName": "app", "TargetKeyId": KEY})
    assert str(error) == (  # AWS's words, nothing appended
        'Alias must start with the prefix "alias/". Please see '
        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
    )
    token = "grant-token-" + "t" * 9000  # a bearer credential, however malformed
    error = _call(env, "Encrypt", {"KeyId": KEY, "Plaintext": b"x", "GrantTokens": [token]})
    assert isinstance(error, ValidationError)
    assert "grant-token-" not in str(error) and "Value at 'grantTokens.1.member'" in str(error)
