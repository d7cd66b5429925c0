"""Members of the current AWS model that Strongroom does not offer are refused by name,
never ignored; members the model made optional only for them stay required here."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import UnsupportedOperationError, ValidationError
from strongroom.kms import Caller, KeyService

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
