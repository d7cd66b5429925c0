"""Key states and which operations each allows: one table, read by every operation.

Operations are grouped: ``crypto`` (Encrypt, Decrypt, Sign, GenerateMac...), ``enable``
(EnableKey, DisableKey), ``rotate`` (EnableKeyRotation, DisableKeyRotation,
RotateKeyOnDemand: an enabled key only, a disabled one is ``DisabledException``), ``cancel``
(CancelKeyDeletion), ``schedule`` (ScheduleKeyDeletion), ``manage`` (descriptions, tags,
policies, grants and aliases), ``import`` (key material import). Reading metadata
(DescribeKey, List*) is allowed in every state.
"""

from __future__ import annotations

from strongroom.errors import DisabledError, InvalidStateError, StrongroomError

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"
PENDING_IMPORT = "PendingImport"
PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
"""A multi-Region primary key scheduled for deletion whose replicas still exist."""
CREATING = "Creating"
"""A new replica key, as ``ReplicateKey`` answers (Strongroom's replicas are ready at once)."""

_ALLOWED: dict[str, frozenset[str]] = {
    ENABLED: frozenset({"crypto", "enable", "rotate", "schedule", "manage", "import"}),
    DISABLED: frozenset({"enable", "schedule", "manage", "import"}),
    PENDING_DELETION: frozenset({"cancel"}),
    PENDING_IMPORT: frozenset({"schedule", "manage", "import"}),
    PENDING_REPLICA_DELETION: frozenset({"cancel"}),
}
_NOTHING: frozenset[str] = frozenset()


def check_state(state: str, group: str, arn: str) -> None:
    """Raise the error AWS returns when a key in ``state`` is used for ``group``."""
    if group in _ALLOWED.get(state, _NOTHING):
        return
    error: StrongroomError
    if state == DISABLED and group in ("crypto", "rotate"):
        error = DisabledError(f"{arn} is disabled.")
    elif state == PENDING_DELETION:
        error = InvalidStateError(f"{arn} is pending deletion.")
    elif state == PENDING_REPLICA_DELETION:
        error = InvalidStateError(f"{arn} is pending replica deletion.")
    elif state == PENDING_IMPORT:
        error = InvalidStateError(f"{arn} is pending import.")
    elif group == "cancel":
        error = InvalidStateError(f"{arn} is not pending deletion.")
    else:
        error = InvalidStateError(f"{arn} is {state.lower()}.")
    raise error
