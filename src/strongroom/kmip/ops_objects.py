"""Create, Register, Get, Activate, Revoke, Destroy: managed objects from birth to shredding."""

from __future__ import annotations

import secrets
import uuid

from strongroom.kmip import lifecycle
from strongroom.kmip.attributes import checked, read_attributes, spec_of
from strongroom.kmip.context import OpCall
from strongroom.kmip.errors import KmipError
from strongroom.kmip.objects import ManagedObject, load, save, seal, unseal
from strongroom.kmip.tags import (
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    ResultReason,
    State,
    Tag,
    UsageMask,
)
from strongroom.kmip.ttlv import (
    Item,
    ItemType,
    boolean,
    byte_string,
    date_time,
    enumeration,
    integer,
    structure,
    text,
)
from strongroom.ports import StoreTx

AES_LENGTHS = (128, 192, 256)
HMAC_ALGORITHMS = frozenset(
    {
        CryptographicAlgorithm.HMAC_SHA1,
        CryptographicAlgorithm.HMAC_SHA224,
        CryptographicAlgorithm.HMAC_SHA256,
        CryptographicAlgorithm.HMAC_SHA384,
        CryptographicAlgorithm.HMAC_SHA512,
    }
)
OBJECT_TAGS = {ObjectType.SYMMETRIC_KEY: Tag.SYMMETRIC_KEY, ObjectType.SECRET_DATA: Tag.SECRET_DATA}


def _object_type(payload: Item) -> ObjectType:
    found = payload.find(Tag.OBJECT_TYPE)
    if found is None or not isinstance(found.value, int):
        raise KmipError(ResultReason.MISSING_DATA, "missing Object Type")
    try:
        kind = ObjectType(found.value)
    except ValueError:
        kind = None
    if kind not in OBJECT_TAGS:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "only symmetric keys and secret data")
    assert kind is not None
    return kind


def template(call: OpCall, payload: Item) -> list[tuple[str, Item]]:
    """The attributes a request gives for a new object (1.x Template-Attribute, 2.x Attributes)."""
    container = payload.find(Tag.ATTRIBUTES if call.v2 else Tag.TEMPLATE_ATTRIBUTE)
    if container is None and not call.v2:
        container = payload.find(Tag.ATTRIBUTES)
    return read_attributes(container)


def _new_object(
    call: OpCall, kind: ObjectType, given: list[tuple[str, Item]], key_format: int
) -> ManagedObject:
    uid = str(uuid.uuid4())
    now = call.now
    obj = ManagedObject(uid, kind, State.PRE_ACTIVE, {}, key_format)
    add_given(obj, given)
    stamp_new(obj, now)
    return obj


def add_given(obj: ManagedObject, given: list[tuple[str, Item]]) -> None:
    """Set the attributes a client gave for a new object (those it may give)."""
    for name, value in given:
        spec = spec_of(name)
        if spec is not None and not spec.at_creation:
            raise KmipError(ResultReason.INVALID_FIELD, f"{name!r} is set by the server")
        stored = checked(name, value)
        if spec is None or spec.multi:
            obj.attrs.setdefault(name, []).append(stored)
        else:
            obj.attrs[name] = [stored]


def stamp_new(obj: ManagedObject, now: int) -> None:
    """The server's attributes of a new object; Active at once if its Activation Date passed."""
    uid, kind = obj.uid, obj.object_type
    obj.set_attr("Unique Identifier", text(Tag.UNIQUE_IDENTIFIER, uid))
    obj.set_attr("Object Type", enumeration(Tag.OBJECT_TYPE, kind))
    obj.set_attr("Initial Date", date_time(Tag.INITIAL_DATE, now))
    obj.set_attr("Last Change Date", date_time(Tag.LAST_CHANGE_DATE, now))
    activation = obj.attr("Activation Date")
    if activation is not None and isinstance(activation.value, int) and activation.value <= now:
        obj.state = State.ACTIVE
    obj.set_attr("State", enumeration(Tag.STATE, obj.state))


def _store_new(call: OpCall, obj: ManagedObject, material: bytes) -> None:
    seal(call.keys, call.client.kms_key, call.client.tenant, obj, material)
    call.kernel.store.write(lambda tx: save(tx, call.client.tenant, obj))
    call.uid = obj.uid
    call.detail["objectType"] = obj.object_type.name


def op_create(call: OpCall, payload: Item) -> list[Item]:
    """Create: a new symmetric key (AES or HMAC) generated here; Pre-Active unless dated."""
    kind = _object_type(payload)
    if kind is not ObjectType.SYMMETRIC_KEY:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "Create makes symmetric keys only")
    obj = _new_object(call, kind, template(call, payload), KeyFormatType.RAW)
    algorithm = obj.int_attr("Cryptographic Algorithm", -1)
    length = obj.int_attr("Cryptographic Length", -1)
    if algorithm == CryptographicAlgorithm.AES:
        if length not in AES_LENGTHS:
            raise KmipError(ResultReason.INVALID_FIELD, "AES keys are 128, 192 or 256 bits")
    elif algorithm in HMAC_ALGORITHMS:
        if length < 128 or length > 1024 or length % 8:
            raise KmipError(ResultReason.INVALID_FIELD, "HMAC keys are 128 to 1024 bits")
    else:
        raise KmipError(ResultReason.INVALID_FIELD, "Cryptographic Algorithm must be AES or HMAC")
    if obj.attr("Cryptographic Usage Mask") is None:
        obj.set_attr(
            "Cryptographic Usage Mask",
            integer(Tag.CRYPTOGRAPHIC_USAGE_MASK, UsageMask.ENCRYPT | UsageMask.DECRYPT),
        )
    if obj.attr("Extractable") is None:  # keys made here stay here unless asked otherwise
        obj.set_attr("Extractable", boolean(Tag.EXTRACTABLE, False))
    _store_new(call, obj, secrets.token_bytes(length // 8))
    return [enumeration(Tag.OBJECT_TYPE, kind), text(Tag.UNIQUE_IDENTIFIER, obj.uid)]


def _key_block(container: Item) -> tuple[int, bytes, Item]:
    block = container.find(Tag.KEY_BLOCK)
    if block is None or block.type is not ItemType.STRUCTURE:
        raise KmipError(ResultReason.MISSING_DATA, "missing Key Block")
    if block.find(Tag.KEY_WRAPPING_SPECIFICATION) is not None or block.find(Tag.KEY_WRAPPING_DATA):
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "wrapped key blocks")
    fmt = block.find(Tag.KEY_FORMAT_TYPE)
    value = block.find(Tag.KEY_VALUE)
    if fmt is None or not isinstance(fmt.value, int) or value is None:
        raise KmipError(ResultReason.MISSING_DATA, "incomplete Key Block")
    material = value.find(Tag.KEY_MATERIAL) if value.type is ItemType.STRUCTURE else None
    if material is not None and isinstance(material.value, tuple):  # transparent key
        material = material.find(Tag.KEY)
    if material is None or not isinstance(material.value, bytes) or not material.value:
        raise KmipError(ResultReason.MISSING_DATA, "missing Key Material")
    return fmt.value, material.value, block


def op_register(call: OpCall, payload: Item) -> list[Item]:
    """Register: store a client's symmetric key or secret data (extractable by default)."""
    kind = _object_type(payload)
    container = payload.find(OBJECT_TAGS[kind])
    if container is None or container.type is not ItemType.STRUCTURE:
        raise KmipError(ResultReason.MISSING_DATA, f"missing the {kind.name} object")
    key_format, material, block = _key_block(container)
    if key_format not in (
        KeyFormatType.RAW,
        KeyFormatType.OPAQUE,
        KeyFormatType.TRANSPARENT_SYMMETRIC_KEY,
    ):
        raise KmipError(ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED, "unsupported key format")
    obj = _new_object(call, kind, template(call, payload), key_format)
    if kind is ObjectType.SECRET_DATA:
        secret_type = container.find(Tag.SECRET_DATA_TYPE)
        obj.secret_data_type = secret_type.value if secret_type is not None else 2  # type: ignore[assignment]
    else:
        for tag, name in (
            (Tag.CRYPTOGRAPHIC_ALGORITHM, "Cryptographic Algorithm"),
            (Tag.CRYPTOGRAPHIC_LENGTH, "Cryptographic Length"),
        ):
            found = block.find(tag)
            if found is not None:
                obj.set_attr(name, found)
        if obj.attr("Cryptographic Length") is None:
            obj.set_attr(
                "Cryptographic Length", integer(Tag.CRYPTOGRAPHIC_LENGTH, len(material) * 8)
            )
    if obj.attr("Extractable") is None:
        obj.set_attr("Extractable", boolean(Tag.EXTRACTABLE, True))
    _store_new(call, obj, material)
    return [text(Tag.UNIQUE_IDENTIFIER, obj.uid)]


def object_item(obj: ManagedObject, material: bytes, key_format: int) -> Item:
    """The ``Symmetric Key`` or ``Secret Data`` structure carrying ``material``."""
    if key_format == KeyFormatType.TRANSPARENT_SYMMETRIC_KEY:
        key_material = structure(Tag.KEY_MATERIAL, byte_string(Tag.KEY, material))
    else:
        key_material = byte_string(Tag.KEY_MATERIAL, material)
    algorithm = obj.attr("Cryptographic Algorithm")
    length = obj.attr("Cryptographic Length")
    block = structure(
        Tag.KEY_BLOCK,
        enumeration(Tag.KEY_FORMAT_TYPE, key_format),
        structure(Tag.KEY_VALUE, key_material),
        Item(Tag.CRYPTOGRAPHIC_ALGORITHM, algorithm.type, algorithm.value) if algorithm else None,
        Item(Tag.CRYPTOGRAPHIC_LENGTH, length.type, length.value) if length else None,
    )
    if obj.object_type is ObjectType.SECRET_DATA:
        return structure(
            Tag.SECRET_DATA, enumeration(Tag.SECRET_DATA_TYPE, obj.secret_data_type or 2), block
        )
    return structure(Tag.SYMMETRIC_KEY, block)


def op_get(call: OpCall, payload: Item) -> list[Item]:
    """Get: the object's material, only if it is marked Extractable."""
    uid = call.uid_of(payload)
    obj = call.read_object(uid)
    lifecycle.check_use("Get", obj.state)
    if payload.find(Tag.KEY_WRAPPING_SPECIFICATION) is not None:
        raise KmipError(ResultReason.FEATURE_NOT_SUPPORTED, "key wrapping on Get")
    requested = payload.find(Tag.KEY_FORMAT_TYPE)
    key_format = obj.key_format
    if requested is not None and requested.value != key_format:
        allowed = {KeyFormatType.RAW, KeyFormatType.TRANSPARENT_SYMMETRIC_KEY}
        if obj.object_type is not ObjectType.SYMMETRIC_KEY or requested.value not in allowed:
            raise KmipError(ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED, "unsupported key format")
        key_format = int(requested.value)  # type: ignore[arg-type,unused-ignore]
    if not obj.extractable:
        raise KmipError(ResultReason.NOT_EXTRACTABLE, "the object is not extractable")
    material = unseal(call.keys, call.client.tenant, obj)
    return [
        enumeration(Tag.OBJECT_TYPE, obj.object_type),
        text(Tag.UNIQUE_IDENTIFIER, uid),
        object_item(obj, material, key_format),
    ]


def _transition(call: OpCall, payload: Item, change: object) -> list[Item]:
    """Load the object for update, apply ``change(obj, now)``, save, answer its uid."""
    uid = call.uid_of(payload)
    tenant = call.client.tenant

    def unit(tx: StoreTx) -> None:
        obj = load(tx, tenant, uid, for_update=True)
        change(obj, call.now)  # type: ignore[operator]
        obj.set_attr("State", enumeration(Tag.STATE, obj.state))
        obj.set_attr("Last Change Date", date_time(Tag.LAST_CHANGE_DATE, call.now))
        save(tx, tenant, obj)

    call.kernel.store.write(unit)
    return [text(Tag.UNIQUE_IDENTIFIER, uid)]


def op_activate(call: OpCall, payload: Item) -> list[Item]:
    """Activate: Pre-Active -> Active."""

    def change(obj: ManagedObject, now: int) -> None:
        obj.state = lifecycle.after_activate(obj.state)
        obj.set_attr("Activation Date", date_time(Tag.ACTIVATION_DATE, now))

    return _transition(call, payload, change)


def op_revoke(call: OpCall, payload: Item) -> list[Item]:
    """Revoke: Active -> Deactivated, or any live state -> Compromised on a compromise."""
    reason = payload.find(Tag.REVOCATION_REASON)
    code_item = reason.find(Tag.REVOCATION_REASON_CODE) if reason is not None else None
    if reason is None or code_item is None or not isinstance(code_item.value, int):
        raise KmipError(ResultReason.MISSING_DATA, "missing Revocation Reason")
    code = code_item.value
    occurred = payload.find(Tag.COMPROMISE_OCCURRENCE_DATE)
    call.detail["revocationReason"] = code

    def change(obj: ManagedObject, now: int) -> None:
        obj.state = lifecycle.after_revoke(obj.state, code)
        obj.set_attr("Revocation Reason", reason)
        if obj.state in (State.COMPROMISED, State.DESTROYED_COMPROMISED):
            obj.set_attr("Compromise Date", date_time(Tag.COMPROMISE_DATE, now))
            when = occurred.value if occurred is not None else now
            obj.set_attr(
                "Compromise Occurrence Date",
                date_time(Tag.COMPROMISE_OCCURRENCE_DATE, int(when)),  # type: ignore[arg-type]
            )
        else:
            obj.set_attr("Deactivation Date", date_time(Tag.DEACTIVATION_DATE, now))

    return _transition(call, payload, change)


def op_destroy(call: OpCall, payload: Item) -> list[Item]:
    """Destroy: forget the material for good (the record stays, its state says Destroyed)."""

    def change(obj: ManagedObject, now: int) -> None:
        obj.state = lifecycle.after_destroy(obj.state)
        obj.sealed_key = None
        obj.sealed_material = None
        obj.set_attr("Destroy Date", date_time(Tag.DESTROY_DATE, now))

    return _transition(call, payload, change)
