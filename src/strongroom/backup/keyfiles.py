"""A repository's key files: each secret wrapped by the KMS, written, read back, unwrapped.

A secret is a data key of the tenant's KMS key (one ``GenerateDataKey``); its wrapped
form is the key file ``keys/<sid hex>-<...>``, written before anything sealed under it.
Opening a secret is one KMS ``Decrypt`` (audited there) of the newest key file the KMS
opens. The keys derived from a secret are :mod:`strongroom.backup.keyring`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from strongroom.backup.config import KeyFile
from strongroom.backup.errors import CorruptError
from strongroom.backup.keyring import Purpose, kms_context
from strongroom.backup.store import RepoStore
from strongroom.data.keys import DataKey, DataKeyProvider
from strongroom.errors import StrongroomError


class BackupKms(DataKeyProvider, Protocol):
    """The KMS calls a repository makes (AWS KMS API: GenerateDataKey, Decrypt, ReEncrypt)."""

    def re_encrypt_data_key(
        self,
        wrapped_key: bytes,
        context: Mapping[str, str] | None,
        destination_key_id: str,
        source_key_id: str | None = None,
    ) -> DataKey:
        """The wrapped key rewrapped under ``destination_key_id``."""
        ...


def new_secret(
    store: RepoStore,
    kms: BackupKms,
    key_id: str,
    repo_id: bytes,
    sid: bytes,
    purpose: Purpose,
    created: str,
) -> DataKey:
    """A new secret ``sid`` under ``key_id``, its key file written; the data key."""
    data_key = kms.generate_data_key(key_id, kms_context(repo_id, sid, purpose))
    key_file = KeyFile(repo_id, sid, purpose, data_key.key_arn, data_key.wrapped, created)
    store.put(f"keys/{key_file.name()}", key_file.encode())
    return data_key


def read_key_files(
    store: RepoStore, repo_id: bytes, sid: bytes | None = None
) -> dict[bytes, list[KeyFile]]:
    """The key files (of secret ``sid`` only, if given) by secret id, newest first.

    A file of another repository, or whose name is not its content's, is corrupt.
    """
    found: dict[bytes, list[KeyFile]] = {}
    for name in store.list(f"keys/{sid.hex()}-" if sid is not None else "keys/"):
        key_file = KeyFile.decode(store.get(name))
        if key_file.repo_id != repo_id or name != f"keys/{key_file.name()}":
            raise CorruptError(f"Key file {name} is corrupt.")
        found.setdefault(key_file.sid, []).append(key_file)
    for files in found.values():
        files.sort(key=lambda k: k.created, reverse=True)  # newest wrapping first
    return found


def unwrap(kms: BackupKms, key_files: list[KeyFile]) -> tuple[bytes, KeyFile]:
    """The secret of the first key file the KMS opens (newest first)."""
    if not key_files:
        raise CorruptError("A repository key file is missing.")
    error: StrongroomError | None = None
    for key_file in key_files:
        try:
            secret = kms.decrypt_data_key(key_file.wrapped, key_file.context, key_file.kms_key)
        except StrongroomError as exc:
            error = exc
            continue
        if len(secret) == 32:
            return secret, key_file
    assert error is not None
    raise error
