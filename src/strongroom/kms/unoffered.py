"""Operations and request members of the vendored AWS KMS model that Strongroom does not offer.

:data:`UNOFFERED_OPERATIONS` names every operation of the model without a handler, with the
reason ``UnsupportedOperationException`` gives (docs/operations.md lists the same, checked by
tests/kms/test_unoffered.py). The vendored model is the current AWS one, so it admits
members that only make sense on AWS (service principals of other AWS services, grant
constraints on their source ARN).
A request that uses one is refused here, by name, before any handler runs: never silently
ignored, which for a grant would mean a broader grant than the caller asked for.
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import UnsupportedOperationError, ValidationError

SERVICE_PRINCIPALS = "AWS service principals are not supported by Strongroom."
CUSTOM_KEY_STORES = "custom key stores (AWS CloudHSM, external key stores) are not offered"

UNOFFERED_OPERATIONS: dict[str, str] = {
    "ConnectCustomKeyStore": CUSTOM_KEY_STORES,
    "CreateCustomKeyStore": CUSTOM_KEY_STORES,
    "DeleteCustomKeyStore": CUSTOM_KEY_STORES,
    "DescribeCustomKeyStores": CUSTOM_KEY_STORES,
    "DisconnectCustomKeyStore": CUSTOM_KEY_STORES,
    "UpdateCustomKeyStore": CUSTOM_KEY_STORES,
}
"""Every operation of the vendored model that has no handler, with the reason given."""

ATTESTATION = "attested enclave requests are not supported by Strongroom."

UNOFFERED_MEMBERS: dict[str, dict[str, str]] = {
    # not in today's model for these: should a later one add attestation, refuse it,
    # never ignore it (the typed request would not carry a member the model lacks)
    "Decapsulate": {"Recipient": ATTESTATION},
    "Encapsulate": {"Recipient": ATTESTATION},
    "GenerateDataKeyPairWithoutPlaintext": {"Recipient": ATTESTATION},
    "CreateGrant": {
        "GranteeServicePrincipal": SERVICE_PRINCIPALS,
        "RetiringServicePrincipal": SERVICE_PRINCIPALS,
    },
    "ListGrants": {"GranteeServicePrincipal": SERVICE_PRINCIPALS},
    "ListRetirableGrants": {"RetiringServicePrincipal": SERVICE_PRINCIPALS},
}
"""Per operation: the members refused, with the message each gets."""

REQUIRED_HERE: dict[str, tuple[str, ...]] = {
    "CreateGrant": ("GranteePrincipal",),
    "ListRetirableGrants": ("RetiringPrincipal",),
}
"""Members the model made optional only for the service-principal alternative."""


_CHECKED = frozenset(UNOFFERED_MEMBERS) | frozenset(REQUIRED_HERE)
"""The operations :func:`refuse_unoffered` has anything to check in (every request passes)."""


def refuse_unoffered(operation: str, request: dict[str, Any]) -> None:
    """Raise if ``request`` uses a member Strongroom does not offer, or lacks one it needs."""
    if operation not in _CHECKED:
        return
    for member, message in UNOFFERED_MEMBERS.get(operation, {}).items():
        if request.get(member) is not None:
            raise UnsupportedOperationError(f"{member}: {message}")
    if operation == "CreateGrant":
        constraints = request.get("Constraints") or {}
        if constraints.get("SourceArn") is not None:
            raise UnsupportedOperationError(
                "Constraints.SourceArn: grant constraints on AWS service source ARNs "
                "are not supported by Strongroom."
            )
    for member in REQUIRED_HERE.get(operation, ()):
        if request.get(member) is None:
            raise ValidationError(
                f"1 validation error detected: Value null at '{member[:1].lower()}"
                f"{member[1:]}' failed to satisfy constraint: Member must not be null"
            )
