"""Locate, GetAttributes, GetAttributeList, Add/Modify/Delete/SetAttribute."""

from __future__ import annotations

from collections.abc import Callable

from strongroom.kmip.attributes import (
    ATTRIBUTE_VALUES_MAX,
    as_value,
    checked,
    read_attributes,
    read_v1_attribute,
    read_v2_attribute,
    reference,
    reference_name,
    spec_of,
    v1_attribute,
    write_attributes,
)
from strongroom.kmip.context import OpCall
from strongroom.kmip.errors import KmipError
from strongroom.kmip.objects import ManagedObject, load, save, scan
from strongroom.kmip.tags import ResultReason, Tag
from strongroom.kmip.ttlv import Item, date_time, integer, text
from strongroom.ports import StoreTx

LOCATE_MAX_ITEMS = 1000
"""Locate answers at most this many identifiers per call (page with Offset Items)."""


def op_locate(call: OpCall, payload: Item) -> list[Item]:
    """Locate: the identifiers of the tenant's objects whose attributes match every filter."""
    container = payload.find(Tag.ATTRIBUTES)
    if container is not None:
        wanted = read_attributes(container)
    else:
        wanted = []
        for attribute in payload.find_all(Tag.ATTRIBUTE):
            name, _, value = read_v1_attribute(attribute)
            wanted.append((name, value))
    filters = [(name, as_value(value)) for name, value in wanted]
    for name, _ in filters:
        spec_of(name)
    maximum = payload.find(Tag.MAXIMUM_ITEMS)
    offset = payload.find(Tag.OFFSET_ITEMS)
    limit = min(int(maximum.value), LOCATE_MAX_ITEMS) if maximum is not None else LOCATE_MAX_ITEMS  # type: ignore[arg-type]
    skip = int(offset.value) if offset is not None else 0  # type: ignore[arg-type]
    if limit < 0 or skip < 0:
        raise KmipError(ResultReason.INVALID_FIELD, "negative Maximum Items or Offset Items")

    def matches(obj: ManagedObject) -> bool:
        return all(value in obj.attrs.get(name, ()) for name, value in filters)

    def unit(tx: StoreTx) -> tuple[int, list[str]]:
        found = [o.uid for o in scan(tx, call.client.tenant) if matches(o)]
        return len(found), found[skip : skip + limit]

    total, uids = call.kernel.store.read(unit)
    if uids:
        call.uid = uids[0]
    call.detail["located"] = len(uids)
    located = [integer(Tag.LOCATED_ITEMS, total)] if call.version >= (1, 3) else []
    return located + [text(Tag.UNIQUE_IDENTIFIER, uid) for uid in uids]


def _read(call: OpCall, payload: Item) -> tuple[str, ManagedObject]:
    uid = call.uid_of(payload)
    return uid, call.read_object(uid)


def op_get_attributes(call: OpCall, payload: Item) -> list[Item]:
    """GetAttributes: the named attributes (all of them when none is named)."""
    uid, obj = _read(call, payload)
    tag = Tag.ATTRIBUTE_REFERENCE if call.v2 else Tag.ATTRIBUTE_NAME
    names = [reference_name(i) for i in payload.find_all(tag)]
    return [text(Tag.UNIQUE_IDENTIFIER, uid), *write_attributes(obj.attrs, names, call.v2)]


def op_get_attribute_list(call: OpCall, payload: Item) -> list[Item]:
    """GetAttributeList: the names of the object's attributes."""
    uid, obj = _read(call, payload)
    if call.v2:
        return [text(Tag.UNIQUE_IDENTIFIER, uid), *(reference(n) for n in obj.attrs)]
    return [text(Tag.UNIQUE_IDENTIFIER, uid), *(text(Tag.ATTRIBUTE_NAME, n) for n in obj.attrs)]


def _editable(name: str) -> None:
    spec = spec_of(name)
    if spec is not None and not spec.client_set:
        raise KmipError(ResultReason.PERMISSION_DENIED, f"{name!r} is set by the server")


def _update(call: OpCall, payload: Item, edit: Callable[[ManagedObject], list[Item]]) -> list[Item]:
    uid = call.uid_of(payload)
    tenant = call.client.tenant

    def unit(tx: StoreTx) -> list[Item]:
        obj = load(tx, tenant, uid, for_update=True)
        answer = edit(obj)
        obj.set_attr("Last Change Date", date_time(Tag.LAST_CHANGE_DATE, call.now))
        save(tx, tenant, obj)
        return answer

    return [text(Tag.UNIQUE_IDENTIFIER, uid), *call.kernel.store.write(unit)]


def _new_attribute(call: OpCall, payload: Item) -> tuple[str, int | None, Item]:
    if call.v2:
        new = payload.find(Tag.NEW_ATTRIBUTE)
        if new is None or not new.items:
            raise KmipError(ResultReason.MISSING_DATA, "missing New Attribute")
        name, value = read_v2_attribute(new.items[0])
        return name, None, value
    attribute = payload.find(Tag.ATTRIBUTE)
    if attribute is None:
        raise KmipError(ResultReason.MISSING_DATA, "missing Attribute")
    return read_v1_attribute(attribute)


def op_add_attribute(call: OpCall, payload: Item) -> list[Item]:
    """AddAttribute: one more value of a multi-valued attribute, or a first value."""
    name, _, value = _new_attribute(call, payload)
    _editable(name)
    stored = checked(name, value)
    call.detail["attribute"] = name

    def edit(obj: ManagedObject) -> list[Item]:
        values = obj.attrs.setdefault(name, [])
        spec = spec_of(name)
        if values and spec is not None and not spec.multi:
            raise KmipError(ResultReason.ILLEGAL_OPERATION, f"{name!r} has a value already")
        if len(values) >= ATTRIBUTE_VALUES_MAX:
            raise KmipError(ResultReason.ILLEGAL_OPERATION, f"too many values of {name!r}")
        values.append(stored)
        return [] if call.v2 else [v1_attribute(name, stored, len(values) - 1)]

    return _update(call, payload, edit)


def op_modify_attribute(call: OpCall, payload: Item) -> list[Item]:
    """ModifyAttribute (and 2.x SetAttribute): replace one existing value."""
    name, index, value = _new_attribute(call, payload)
    _editable(name)
    stored = checked(name, value)
    call.detail["attribute"] = name
    current = payload.find(Tag.CURRENT_ATTRIBUTE)

    def edit(obj: ManagedObject) -> list[Item]:
        values = obj.attrs.get(name)
        if not values:
            raise KmipError(ResultReason.ITEM_NOT_FOUND, f"the object has no {name!r}")
        at = index or 0
        if current is not None and current.items:
            old = as_value(current.items[0])
            at = values.index(old) if old in values else -1
        if not 0 <= at < len(values):
            raise KmipError(ResultReason.INDEX_OUT_OF_BOUNDS, "no such attribute value")
        values[at] = stored
        return [] if call.v2 else [v1_attribute(name, stored, at)]

    return _update(call, payload, edit)


def op_set_attribute(call: OpCall, payload: Item) -> list[Item]:
    """SetAttribute (2.x): give a single-valued attribute its value, whether or not it had one."""
    name, _, value = _new_attribute(call, payload)
    _editable(name)
    stored = checked(name, value)
    call.detail["attribute"] = name

    def edit(obj: ManagedObject) -> list[Item]:
        obj.attrs[name] = [stored]
        return []

    return _update(call, payload, edit)


def op_delete_attribute(call: OpCall, payload: Item) -> list[Item]:
    """DeleteAttribute: remove one value (by index in 1.x, by value or reference in 2.x)."""
    current = payload.find(Tag.CURRENT_ATTRIBUTE)
    index_item = payload.find(Tag.ATTRIBUTE_INDEX)
    index = int(index_item.value) if index_item is not None else 0  # type: ignore[arg-type]
    old: Item | None = None
    if current is not None and current.items:
        name, value = read_v2_attribute(current.items[0])
        old = as_value(value)
    else:
        ref = payload.find(Tag.ATTRIBUTE_REFERENCE if call.v2 else Tag.ATTRIBUTE_NAME)
        if ref is None:
            raise KmipError(ResultReason.MISSING_DATA, "missing the attribute to delete")
        name = reference_name(ref)
    _editable(name)
    call.detail["attribute"] = name

    def edit(obj: ManagedObject) -> list[Item]:
        values = obj.attrs.get(name)
        if not values:
            raise KmipError(ResultReason.ITEM_NOT_FOUND, f"the object has no {name!r}")
        at = values.index(old) if old is not None and old in values else index
        if (old is not None and old not in values) or not 0 <= at < len(values):
            raise KmipError(ResultReason.INDEX_OUT_OF_BOUNDS, "no such attribute value")
        removed = values.pop(at)
        if not values:
            del obj.attrs[name]
        return [] if call.v2 else [v1_attribute(name, removed, at)]

    return _update(call, payload, edit)
