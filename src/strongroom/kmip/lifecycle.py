"""Object states (KMIP 1.4 section 3.22): which operation may move an object where.

::

    Pre-Active --Activate--> Active --Revoke(other reasons)--> Deactivated
        |                      |                                   |
        +------ Revoke(key or CA compromise), from any live state --> Compromised
    Pre-Active, Deactivated --Destroy--> Destroyed; Compromised --Destroy--> Destroyed Compromised

Encrypt and MAC need an Active key; Decrypt also works on a Deactivated or Compromised one
(recovering data is allowed, protecting new data is not); Get needs material (not destroyed).
"""

from __future__ import annotations

from strongroom.kmip.errors import KmipError
from strongroom.kmip.tags import ResultReason, RevocationReasonCode, State

LIVE = frozenset({State.PRE_ACTIVE, State.ACTIVE, State.DEACTIVATED, State.COMPROMISED})
"""States in which an object still has its material."""

USE_STATES: dict[str, frozenset[State]] = {
    "Encrypt": frozenset({State.ACTIVE}),
    "MAC": frozenset({State.ACTIVE}),
    "Decrypt": frozenset({State.ACTIVE, State.DEACTIVATED, State.COMPROMISED}),
    "Get": LIVE,
}
"""The states each use of an object is allowed in."""


def _refuse(message: str) -> KmipError:
    return KmipError(ResultReason.PERMISSION_DENIED, message)


def check_use(operation: str, state: State) -> None:
    """Raise unless ``operation`` may use an object in ``state``."""
    if state not in USE_STATES[operation]:
        raise _refuse(f"{operation} is not allowed on an object in state {state.name}")


def after_activate(state: State) -> State:
    """The state after Activate."""
    if state is not State.PRE_ACTIVE:
        raise _refuse(f"only a pre-active object can be activated (it is {state.name})")
    return State.ACTIVE


def after_revoke(state: State, code: int) -> State:
    """The state after Revoke with reason ``code``."""
    if code in (RevocationReasonCode.KEY_COMPROMISE, RevocationReasonCode.CA_COMPROMISE):
        if state in (State.DESTROYED, State.DESTROYED_COMPROMISED):
            return State.DESTROYED_COMPROMISED
        return State.COMPROMISED
    if state is State.ACTIVE:
        return State.DEACTIVATED
    raise _refuse(f"an object in state {state.name} can only be revoked as compromised")


def after_destroy(state: State) -> State:
    """The state after Destroy (an active object must be revoked first)."""
    if state is State.ACTIVE:
        raise _refuse("an active object cannot be destroyed; revoke it first")
    if state is State.COMPROMISED:
        return State.DESTROYED_COMPROMISED
    if state in (State.PRE_ACTIVE, State.DEACTIVATED):
        return State.DESTROYED
    raise _refuse("the object is already destroyed")
