"""KMIP attributes: the names Strongroom knows, and both wire forms of them.

KMIP 1.x sends an attribute as ``Attribute { Attribute Name, [Attribute Index],
Attribute Value }``; KMIP 2.x sends the value itself under the attribute's own tag inside
an ``Attributes`` structure. Objects keep each value as an :class:`~strongroom.kmip.ttlv.Item`
re-tagged ``Attribute Value``, so either form can be answered from it. Custom attributes
(names starting ``x-`` or ``y-``) are kept with whatever type the client gave.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.kmip.errors import KmipError
from strongroom.kmip.tags import ResultReason, Tag
from strongroom.kmip.ttlv import Item, ItemType, structure, text

ATTRIBUTE_NAME_MAX = 256
"""Longest attribute name accepted."""
ATTRIBUTE_VALUES_MAX = 64
"""At most this many values of one attribute per object."""


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """What Strongroom knows of one standard attribute."""

    name: str
    tag: int
    type: ItemType
    multi: bool = False
    client_set: bool = True
    """Whether a client may add, modify or delete it (else the server alone sets it)."""
    at_creation: bool = True
    """Whether a client may give it in Create or Register."""


_SPECS = (
    AttributeSpec("Unique Identifier", Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, False, False),
    AttributeSpec("Name", Tag.NAME, ItemType.STRUCTURE, True),
    AttributeSpec("Object Type", Tag.OBJECT_TYPE, ItemType.ENUMERATION, False, False),
    AttributeSpec(
        "Cryptographic Algorithm", Tag.CRYPTOGRAPHIC_ALGORITHM, ItemType.ENUMERATION, False, False
    ),
    AttributeSpec("Cryptographic Length", Tag.CRYPTOGRAPHIC_LENGTH, ItemType.INTEGER, False, False),
    AttributeSpec(
        "Cryptographic Parameters", Tag.CRYPTOGRAPHIC_PARAMETERS, ItemType.STRUCTURE, True
    ),
    AttributeSpec("Cryptographic Usage Mask", Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER),
    AttributeSpec("State", Tag.STATE, ItemType.ENUMERATION, False, False, False),
    AttributeSpec("Initial Date", Tag.INITIAL_DATE, ItemType.DATE_TIME, False, False, False),
    AttributeSpec("Activation Date", Tag.ACTIVATION_DATE, ItemType.DATE_TIME, False, False),
    AttributeSpec(
        "Deactivation Date", Tag.DEACTIVATION_DATE, ItemType.DATE_TIME, False, False, False
    ),
    AttributeSpec("Destroy Date", Tag.DESTROY_DATE, ItemType.DATE_TIME, False, False, False),
    AttributeSpec("Compromise Date", Tag.COMPROMISE_DATE, ItemType.DATE_TIME, False, False, False),
    AttributeSpec(
        "Compromise Occurrence Date",
        Tag.COMPROMISE_OCCURRENCE_DATE,
        ItemType.DATE_TIME,
        False,
        False,
        False,
    ),
    AttributeSpec(
        "Last Change Date", Tag.LAST_CHANGE_DATE, ItemType.DATE_TIME, False, False, False
    ),
    AttributeSpec(
        "Revocation Reason", Tag.REVOCATION_REASON, ItemType.STRUCTURE, False, False, False
    ),
    AttributeSpec("Object Group", Tag.OBJECT_GROUP, ItemType.TEXT_STRING, True),
    AttributeSpec("Contact Information", Tag.CONTACT_INFORMATION, ItemType.TEXT_STRING),
    AttributeSpec(
        "Application Specific Information",
        Tag.APPLICATION_SPECIFIC_INFORMATION,
        ItemType.STRUCTURE,
        True,
    ),
    AttributeSpec("Operation Policy Name", Tag.OPERATION_POLICY_NAME, ItemType.TEXT_STRING),
    AttributeSpec("Link", Tag.LINK, ItemType.STRUCTURE, True),
    AttributeSpec("Description", Tag.DESCRIPTION, ItemType.TEXT_STRING),
    AttributeSpec("Comment", Tag.COMMENT, ItemType.TEXT_STRING),
    AttributeSpec("Sensitive", Tag.SENSITIVE, ItemType.BOOLEAN),
    AttributeSpec("Extractable", Tag.EXTRACTABLE, ItemType.BOOLEAN),
    AttributeSpec("Fresh", Tag.FRESH, ItemType.BOOLEAN, False, False, False),
    AttributeSpec(
        "Original Creation Date", Tag.ORIGINAL_CREATION_DATE, ItemType.DATE_TIME, False, False
    ),
)
BY_NAME: dict[str, AttributeSpec] = {s.name: s for s in _SPECS}
BY_TAG: dict[int, AttributeSpec] = {s.tag: s for s in _SPECS}

Attributes = dict[str, list[Item]]
"""An object's attributes: name -> values, each tagged ``Attribute Value``."""


def is_custom(name: str) -> bool:
    """Whether ``name`` is a client's custom attribute (``x-...``/``y-...``)."""
    return name.startswith(("x-", "y-"))


def spec_of(name: str) -> AttributeSpec | None:
    """The standard attribute called ``name``; ``None`` for a custom one.

    Raises :class:`KmipError` (Invalid Field) for a name that is neither.
    """
    found = BY_NAME.get(name)
    if found is None and not is_custom(name):
        raise KmipError(ResultReason.INVALID_FIELD, f"unknown attribute {name[:64]!r}")
    if len(name) > ATTRIBUTE_NAME_MAX:
        raise KmipError(ResultReason.INVALID_FIELD, "attribute name too long")
    return found


def as_value(item: Item) -> Item:
    """``item`` re-tagged as an ``Attribute Value``."""
    return Item(Tag.ATTRIBUTE_VALUE, item.type, item.value)


def checked(name: str, value: Item) -> Item:
    """``value`` as stored, after checking its type against the attribute's."""
    spec = spec_of(name)
    if spec is not None and value.type != spec.type:
        raise KmipError(ResultReason.INVALID_FIELD, f"attribute {name!r} has the wrong type")
    return as_value(value)


# -- reading requests -----------------------------------------------------------------------


def read_v1_attribute(item: Item) -> tuple[str, int | None, Item]:
    """``(name, index, value)`` of a KMIP 1.x ``Attribute`` structure."""
    name_item = item.find(Tag.ATTRIBUTE_NAME)
    if name_item is None or not isinstance(name_item.value, str):
        raise KmipError(ResultReason.INVALID_MESSAGE, "an Attribute without Attribute Name")
    index_item = item.find(Tag.ATTRIBUTE_INDEX)
    index = index_item.value if index_item is not None else None
    if index is not None and not isinstance(index, int):
        raise KmipError(ResultReason.INVALID_MESSAGE, "Attribute Index is not an integer")
    value = item.find(Tag.ATTRIBUTE_VALUE)
    if value is None:
        value = Item(Tag.ATTRIBUTE_VALUE, ItemType.STRUCTURE, ())
    return name_item.value, index, value


def read_v2_attribute(item: Item) -> tuple[str, Item]:
    """``(name, value)`` of one item of a KMIP 2.x ``Attributes`` structure."""
    spec = BY_TAG.get(item.tag)
    if spec is None:
        raise KmipError(ResultReason.INVALID_FIELD, f"unknown attribute tag 0x{item.tag:06X}")
    return spec.name, item


def read_attributes(container: Item | None) -> list[tuple[str, Item]]:
    """Every ``(name, value)`` in a ``Template-Attribute`` (1.x) or ``Attributes`` (2.x)."""
    if container is None:
        return []
    found: list[tuple[str, Item]] = []
    for child in container.items:
        if child.tag == Tag.ATTRIBUTE:
            name, _, value = read_v1_attribute(child)
            found.append((name, value))
        elif container.tag == Tag.ATTRIBUTES:
            found.append(read_v2_attribute(child))
        elif child.tag == Tag.NAME:
            continue  # a template Name (1.x templates are not supported)
        else:
            raise KmipError(ResultReason.INVALID_FIELD, f"unexpected item 0x{child.tag:06X}")
    return found


def reference_name(item: Item) -> str:
    """The attribute a 2.x ``Attribute Reference`` (or 1.x ``Attribute Name``) names."""
    if isinstance(item.value, str):
        return item.value
    if item.type is ItemType.ENUMERATION and isinstance(item.value, int):
        spec = BY_TAG.get(item.value)
        if spec is None:
            raise KmipError(ResultReason.INVALID_FIELD, "unknown attribute reference")
        return spec.name
    if isinstance(item.value, tuple):
        name = item.find(Tag.ATTRIBUTE_NAME)
        if name is not None and isinstance(name.value, str):
            return name.value
    raise KmipError(ResultReason.INVALID_FIELD, "unreadable attribute reference")


# -- writing responses ----------------------------------------------------------------------


def v1_attribute(name: str, value: Item, index: int | None = None) -> Item:
    """A KMIP 1.x ``Attribute`` structure."""
    index_item = Item(Tag.ATTRIBUTE_INDEX, ItemType.INTEGER, index) if index else None
    return structure(Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, name), index_item, as_value(value))


def v2_value(name: str, value: Item) -> Item | None:
    """The value under its own tag for a 2.x ``Attributes`` structure (custom: ``None``)."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None
    return Item(spec.tag, value.type, value.value)


def write_attributes(attrs: Attributes, names: list[str] | None, v2: bool) -> list[Item]:
    """The response items for ``attrs`` (only ``names`` if given), in the version's form."""
    selected = list(attrs) if not names else [n for n in names if n in attrs]
    if v2:
        values = [v2_value(n, v) for n in selected for v in attrs[n]]
        return [structure(Tag.ATTRIBUTES, *values)]
    return [
        v1_attribute(name, value, index)
        for name in selected
        for index, value in enumerate(attrs[name])
    ]


def reference(name: str) -> Item:
    """A 2.x ``Attribute Reference`` naming ``name`` (by tag when it has one)."""
    spec = BY_NAME.get(name)
    if spec is not None:
        return Item(Tag.ATTRIBUTE_REFERENCE, ItemType.ENUMERATION, spec.tag)
    return structure(Tag.ATTRIBUTE_REFERENCE, text(Tag.ATTRIBUTE_NAME, name))
