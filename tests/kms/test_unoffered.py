"""Members of the current AWS model that Strongroom does not offer are refused by name,
never ignored; members the model made optional only for them stay required here. The
operations and key specs not offered are exactly those docs/operations.md and the README
name, checked against the vendored model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import UnsupportedOperationError, ValidationError
from strongroom.kms import Caller, KeyService
from strongroom.kms.keyspec import KEY_SPECS, NOT_OFFERED_SPECS
from strongroom.kms.ops import HANDLERS
from strongroom.kms.unoffered import UNOFFERED_OPERATIONS
from strongroom.kms.wire_model import WireModel

SOURCE_ARN = "arn:aws:logs:eu-west-1:111122223333:log-group:x"


def new_key(service: KeyService, caller: Caller) -> str:
    return str(service.call(caller, "CreateKey", {})["KeyMetadata"]["KeyId"])


@pytest.mark.parametrize(
    ("operation", "extra", "member"),
    [
        ("CreateGrant", {"GranteeServicePrincipal": "logs.eu-west-1.amazonaws.com"}, "Grantee"),
        ("CreateGrant", {"RetiringServicePrincipal": "logs.amazonaws.com"}, "Retiring"),
        ("CreateGrant", {"Constraints": {"SourceArn": SOURCE_ARN}}, "Source"),
        ("ListGrants", {"GranteeServicePrincipal": "logs.amazonaws.com"}, "Grantee"),
    ],
)
def test_service_principal_members_are_refused_by_name(
    service: KeyService, alice: Caller, operation: str, extra: dict[str, Any], member: str
) -> None:
    key = new_key(service, alice)
    request: dict[str, Any] = {"KeyId": key, **extra}
    if operation == "CreateGrant":
        request |= {"GranteePrincipal": alice.principal_arn, "Operations": ["Decrypt"]}
    with pytest.raises(UnsupportedOperationError, match=member):
        service.call(alice, operation, request)
    listed = service.call(alice, "ListGrants", {"KeyId": key})
    assert listed["Grants"] == []  # nothing was created on the way


def test_retirable_grants_need_a_retiring_principal(service: KeyService, alice: Caller) -> None:
    with pytest.raises(ValidationError, match=r"'retiringPrincipal'.*must not be null"):
        service.call(alice, "ListRetirableGrants", {})
    with pytest.raises(UnsupportedOperationError, match="RetiringServicePrincipal"):
        service.call(
            alice, "ListRetirableGrants", {"RetiringServicePrincipal": "logs.amazonaws.com"}
        )


def test_a_grant_needs_a_grantee(service: KeyService, alice: Caller) -> None:
    key = new_key(service, alice)
    with pytest.raises(ValidationError, match="'granteePrincipal'"):
        service.call(alice, "CreateGrant", {"KeyId": key, "Operations": ["Decrypt"]})


def test_list_keys_by_resource_owner(service: KeyService, alice: Caller) -> None:
    key = new_key(service, alice)
    mine = service.call(alice, "ListKeys", {"ResourceOwners": ["SELF"]})
    assert [k["KeyId"] for k in mine["Keys"]] == [key]
    both = service.call(alice, "ListKeys", {"ResourceOwners": ["SELF", "OTHER_ACCOUNTS_VIA_RAM"]})
    assert [k["KeyId"] for k in both["Keys"]] == [key]
    shared = service.call(alice, "ListKeys", {"ResourceOwners": ["OTHER_ACCOUNTS_VIA_RAM"]})
    assert shared == {"Keys": [], "Truncated": False}


# -- what is offered, as the docs say it -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _section(path: Path, start: str, end: str) -> str:
    text = path.read_text(encoding="utf-8")
    begin = text.index(start)
    return text[begin : text.index(end, begin)]


def _not_offered_bullet() -> str:
    section = _section(ROOT / "docs" / "operations.md", "## What differs from AWS KMS", "\n## ")
    bullet = section[section.index("- **Not offered**") :]
    return bullet[: bullet.index("\n- **")]


def test_every_model_operation_is_handled_or_refused_by_name() -> None:
    model = set(WireModel.load().operations)
    assert set(HANDLERS) | set(UNOFFERED_OPERATIONS) == model
    assert set(HANDLERS) & set(UNOFFERED_OPERATIONS) == set(), "offered now: drop it from the list"


def test_the_documented_unoffered_operations_are_exactly_the_refused_ones() -> None:
    model = set(WireModel.load().operations)
    named = set(re.findall(r"`([A-Za-z]+)`", _not_offered_bullet())) & model
    assert named == set(UNOFFERED_OPERATIONS)
    count = re.search(r"these (\d+) and only these", _not_offered_bullet())
    assert count is not None and int(count.group(1)) == len(UNOFFERED_OPERATIONS)
    assert f"Of the {len(model)} operations" in _not_offered_bullet()


def test_the_documented_unoffered_key_specs_are_exactly_the_refused_ones() -> None:
    specs = set(WireModel.load().shapes["KeySpec"]["enum"])
    assert set(KEY_SPECS) | set(NOT_OFFERED_SPECS) == specs
    named = set(re.findall(r"`([A-Z0-9_]+)`", _not_offered_bullet())) & specs
    assert named == set(NOT_OFFERED_SPECS)


def test_the_readme_names_only_unoffered_operations_as_unoffered() -> None:
    claim = " ".join(  # the paragraph as one line, however it is wrapped
        _section(ROOT / "README.md", "Every AWS KMS operation of the current model", "\n\n").split()
    )
    refused = claim[: claim.index("answers as AWS does")]
    model = set(WireModel.load().operations)
    assert set(re.findall(r"`([A-Za-z]+)`", refused)) & model == set(UNOFFERED_OPERATIONS)
    for spec in NOT_OFFERED_SPECS:
        assert f"`{spec}`" in claim


def test_an_unoffered_operation_says_why(service: KeyService, alice: Caller) -> None:
    for operation, reason in UNOFFERED_OPERATIONS.items():
        with pytest.raises(UnsupportedOperationError) as info:
            service.call(alice, operation, {})
        assert str(info.value) == f"{operation} is not supported by Strongroom: {reason}."
