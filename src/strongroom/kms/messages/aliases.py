"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.aliases`.

Operations: CreateAlias, DeleteAlias, ListAliases, UpdateAlias.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class CreateAliasRequest(NamedTuple):
    """Request of ``CreateAlias``."""

    alias_name: str
    target_key_id: str


class DeleteAliasRequest(NamedTuple):
    """Request of ``DeleteAlias``."""

    alias_name: str


class ListAliasesRequest(NamedTuple):
    """Request of ``ListAliases``."""

    key_id: str | None = None
    limit: int | None = None
    marker: str | None = None


class ListAliasesResponse(NamedTuple):
    """Response of ``ListAliases``."""

    aliases: Sequence[AliasListEntry] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


class UpdateAliasRequest(NamedTuple):
    """Request of ``UpdateAlias``."""

    alias_name: str
    target_key_id: str


class AliasListEntry(NamedTuple):
    """Shape ``AliasListEntry`` of the model."""

    alias_arn: str | None = None
    alias_name: str | None = None
    creation_date: float | None = None
    last_updated_date: float | None = None
    target_key_id: str | None = None
