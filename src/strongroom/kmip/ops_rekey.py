"""ReKey: a new symmetric key replacing an existing one (KMIP 1.4 section 4.4, 2.x 6.1.42).

The replacement gets fresh material of the same algorithm and length and the existing
key's attributes, except those the server keeps per object (identifier, dates, state,
revocation, links). Names move to the replacement (the existing key keeps none), as the
specification asks. The two are linked both ways: the existing key gets a ``Link`` of
type Replacement Object naming the new one, the new key one of type Replaced Object
naming the old. The existing key keeps its state: a client revokes it when its data is
re-encrypted.

Activation: with an ``Offset`` the replacement activates at ReKey time + Offset; without
one it takes the existing key's Activation Date (so an active key is replaced by an active
key); an Activation Date in the request's attributes wins over both. Both records change
in one transaction; the material is sealed under the tenant's KMS key as Create does.
"""

from __future__ import annotations

import secrets
import uuid

from strongroom.kmip.attributes import as_value
from strongroom.kmip.context import OpCall
from strongroom.kmip.errors import KmipError
from strongroom.kmip.objects import ManagedObject, load, save, seal
from strongroom.kmip.ops_objects import add_given, stamp_new, template
from strongroom.kmip.tags import LinkType, ObjectType, ResultReason, State, Tag
from strongroom.kmip.ttlv import Item, date_time, enumeration, structure, text
from strongroom.ports import StoreTx

REKEYABLE = frozenset({State.PRE_ACTIVE, State.ACTIVE, State.DEACTIVATED, State.COMPROMISED})
"""States of a key that may be replaced (it still has material)."""
PER_OBJECT = frozenset(
    {
        "Unique Identifier",
        "Initial Date",
        "Last Change Date",
        "State",
        "Activation Date",
        "Deactivation Date",
        "Destroy Date",
        "Compromise Date",
        "Compromise Occurrence Date",
        "Revocation Reason",
        "Link",
        "Fresh",
        "Name",
    }
)
"""Attributes the replacement does not copy from the existing key."""
MAX_OFFSET_S = 100 * 365 * 86400


def link(kind: LinkType, uid: str) -> Item:
    """A ``Link`` attribute value of type ``kind`` to object ``uid``."""
    return structure(
        Tag.LINK, enumeration(Tag.LINK_TYPE, kind), text(Tag.LINKED_OBJECT_IDENTIFIER, uid)
    )


def _link_type(value: Item) -> int | None:
    found = value.find(Tag.LINK_TYPE) if isinstance(value.value, tuple) else None
    return found.value if found is not None and isinstance(found.value, int) else None


def _set_link(obj: ManagedObject, kind: LinkType, uid: str) -> None:
    """Make ``obj``'s only link of type ``kind`` point at ``uid``."""
    kept = [v for v in obj.attrs.get("Link", []) if _link_type(v) != kind]
    obj.attrs["Link"] = [*kept, as_value(link(kind, uid))]


def _offset(payload: Item) -> int | None:
    found = payload.find(Tag.OFFSET)
    if found is None:
        return None
    if not isinstance(found.value, int) or not 0 <= found.value <= MAX_OFFSET_S:
        raise KmipError(ResultReason.INVALID_FIELD, "Offset must be 0 to 100 years in seconds")
    return found.value


def _check(obj: ManagedObject) -> None:
    if obj.object_type is not ObjectType.SYMMETRIC_KEY:
        raise KmipError(ResultReason.ILLEGAL_OPERATION, "ReKey replaces symmetric keys only")
    if obj.state not in REKEYABLE:
        raise KmipError(
            ResultReason.PERMISSION_DENIED, f"a key in state {obj.state.name} cannot be re-keyed"
        )


def op_rekey(call: OpCall, payload: Item) -> list[Item]:
    """ReKey: the replacement's Unique Identifier (the next batch item's ID Placeholder)."""
    uid = call.uid_of(payload)
    offset = _offset(payload)
    given = template(call, payload)
    tenant = call.client.tenant
    old = call.kernel.store.read(lambda tx: load(tx, tenant, uid))
    _check(old)
    now = call.now
    attrs = {n: list(vs) for n, vs in old.attrs.items() if n not in PER_OBJECT}
    new = ManagedObject(
        str(uuid.uuid4()), ObjectType.SYMMETRIC_KEY, State.PRE_ACTIVE, attrs, old.key_format
    )
    activation = old.attr("Activation Date")
    if offset is not None:
        new.set_attr("Activation Date", date_time(Tag.ACTIVATION_DATE, now + offset))
    elif activation is not None:
        new.set_attr("Activation Date", activation)
    add_given(new, given)
    stamp_new(new, now)
    _set_link(new, LinkType.REPLACED_OBJECT, uid)
    length = new.int_attr("Cryptographic Length", 256)
    seal(call.keys, call.client.kms_key, tenant, new, secrets.token_bytes(length // 8))
    names_given = any(name == "Name" for name, _ in given)

    def unit(tx: StoreTx) -> None:
        current = load(tx, tenant, uid, for_update=True)
        _check(current)  # as it is now, not as it was before the material was sealed
        names = current.attrs.pop("Name", [])
        if names and not names_given:
            new.attrs["Name"] = names
        _set_link(current, LinkType.REPLACEMENT_OBJECT, new.uid)
        current.set_attr("Last Change Date", date_time(Tag.LAST_CHANGE_DATE, now))
        save(tx, tenant, current)
        save(tx, tenant, new)

    call.kernel.store.write(unit)
    call.uid = new.uid
    call.detail["replacedObject"] = uid
    return [text(Tag.UNIQUE_IDENTIFIER, new.uid)]
