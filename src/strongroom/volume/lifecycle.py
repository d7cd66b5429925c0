"""Changing a volume's Strongroom binding: format, bind, rewrap, shred.

Each operation checks everything it can before it writes (the device is LUKS2, the token
is ours and names this volume, the KMS key is enabled and symmetric, an existing
passphrase opens a keyslot), asks the KMS, and only then writes through ``cryptsetup``,
one header update per step. Where a second step fails after a first one wrote (a keyslot
added but its token refused), the first is undone, so a failed command leaves the header
as it found it.
"""

from __future__ import annotations

import os
import subprocess

from strongroom.errors import StrongroomError, ValidationError
from strongroom.volume import cryptsetup
from strongroom.volume.header import LUKS_MAGIC, read_header
from strongroom.volume.recover import Bound, annotate, select_tokens, unwrap
from strongroom.volume.token import (
    TENANT_CONTEXT_KEY,
    VolumeToken,
    passphrase_of,
    volume_context,
)

TYPE_CHECKING = False  # not typing's: `strongroom volume rewrap` has a fast start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from strongroom.volume.kms import VolumeKeys


class KeyFacts:
    """What the volume commands need to know of a KMS key before using it: ARN, account.

    A plain slotted class, not a dataclass: ``rewrap``'s fast start does not import
    ``dataclasses`` (it costs more than the rest of the module).
    """

    __slots__ = ("account", "arn")

    def __init__(self, arn: str, account: str) -> None:
        self.arn = arn
        self.account = account

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyFacts):
            return NotImplemented
        return (self.arn, self.account) == (other.arn, other.account)

    def __hash__(self) -> int:
        return hash((self.arn, self.account))

    def __repr__(self) -> str:
        return f"KeyFacts(arn={self.arn!r}, account={self.account!r})"


def usable_key(keys: VolumeKeys, key_id: str) -> KeyFacts:
    """``DescribeKey``: the key's ARN and account, if it is an enabled symmetric key."""
    meta = keys.describe_key(key_id)
    arn = str(meta.get("Arn") or "")
    if meta.get("KeyState") != "Enabled" or meta.get("Enabled") is False:
        raise ValidationError(
            f"The KMS key {arn or key_id} is {meta.get('KeyState')}, not Enabled."
        )
    if meta.get("KeyUsage") != "ENCRYPT_DECRYPT" or meta.get("KeySpec") != "SYMMETRIC_DEFAULT":
        raise ValidationError(
            f"The KMS key {arn} is not a symmetric encryption key "
            f"({meta.get('KeySpec')}, {meta.get('KeyUsage')})."
        )
    return KeyFacts(arn, str(meta.get("AWSAccountId") or arn.split(":")[4]))


def _has_signature(device: str) -> str | None:
    """The type of a filesystem or other signature ``blkid`` finds on ``device``, if any."""
    import shutil

    blkid = shutil.which("blkid") or shutil.which("blkid", path="/usr/sbin:/sbin")
    if blkid is None:
        return None
    done = subprocess.run(  # noqa: S603 - fixed binary
        [blkid, "-p", "-o", "value", "-s", "TYPE", device],
        capture_output=True,
        timeout=60,
        check=False,
    )
    found = done.stdout.decode("utf-8", "replace").strip()
    return found if done.returncode == 0 and found else None


def _prepare_target(device: str, size: int | None, force: bool) -> bool:
    """Check ``device`` may be formatted; create it (sparse) if ``size`` says so.

    Returns whether the file was created here (to remove it if formatting fails).
    """
    if not os.path.exists(device):
        if size is None:
            raise ValidationError(f"{device}: no such device or file (give --size to create it).")
        fd = os.open(device, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return True
    if size is not None:
        raise ValidationError(f"{device}: exists already; --size only creates a new image file.")
    if not force:
        with open(device, "rb") as handle:
            if handle.read(6) == LUKS_MAGIC:
                raise ValidationError(
                    f"{device}: is a LUKS device already; give --force to format it anyway "
                    "(its data will be lost)."
                )
        found = _has_signature(device)
        if found is not None:
            raise ValidationError(
                f"{device}: holds a {found} signature; give --force to format it anyway "
                "(its data will be lost)."
            )
    return False


def format_volume(
    keys: VolumeKeys,
    device: str,
    key_id: str,
    extra_context: Mapping[str, str] | None = None,
    *,
    size: int | None = None,
    force: bool = False,
) -> Bound:
    """``luksFormat`` a new LUKS2 volume whose keyslot 0 holds a KMS-wrapped passphrase.

    The UUID is chosen here so the passphrase's encryption context can name it before
    anything is written; the token (id 0) is imported right after the format.
    """
    created = _prepare_target(device, size, force)
    try:
        facts = usable_key(keys, key_id)
        import uuid  # only here: it imports platform, which compiles a dozen regexes

        volume = str(uuid.uuid4())
        context = volume_context(volume, facts.account, extra_context)
        data_key, blob, arn = keys.generate_data_key(facts.arn, context)
        passphrase = passphrase_of(data_key)
        cryptsetup.luks_format(device, volume, passphrase)
    except BaseException:
        if created:
            os.unlink(device)
        raise
    try:
        token = VolumeToken(0, arn, blob, context)
        token = token.with_check(passphrase, read_header(device).keyslot_salt(0))
        cryptsetup.import_token(device, token.to_json(), 0)
    except StrongroomError as exc:
        raise annotate(
            exc,
            f"{device} was formatted but its token could not be written, so nothing can "
            "unlock it: format it again. ",
        ) from None
    return Bound(0, token)


def bind_volume(
    keys: VolumeKeys,
    device: str,
    key_id: str,
    existing: bytes,
    extra_context: Mapping[str, str] | None = None,
) -> Bound:
    """Add a Strongroom keyslot and token to an existing LUKS2 volume.

    ``existing`` is a passphrase (or key file content) that opens one of its keyslots.
    """
    header = read_header(device)
    cryptsetup.test_passphrase(device, existing)
    facts = usable_key(keys, key_id)
    context = volume_context(header.uuid, facts.account, extra_context)
    data_key, blob, arn = keys.generate_data_key(facts.arn, context)
    slot, token_id = header.free_keyslot(), header.free_token_id()
    passphrase = passphrase_of(data_key)
    cryptsetup.add_key(device, existing, passphrase, slot)
    try:
        token = VolumeToken(slot, arn, blob, context)
        token = token.with_check(passphrase, read_header(device).keyslot_salt(slot))
        cryptsetup.import_token(device, token.to_json(), token_id)
    except BaseException:
        cryptsetup.kill_slot(device, slot)
        raise
    return Bound(token_id, token)


def only_token(device: str, token_id: int | None) -> Bound:
    """The one Strongroom token a change applies to (``token_id`` when several)."""
    tokens = select_tokens(read_header(device), device, token_id)
    if len(tokens) > 1:
        ids = ", ".join(str(bound.token_id) for bound in tokens)
        raise ValidationError(
            f"{device}: several Strongroom tokens ({ids}); name one with --token-id."
        )
    return tokens[0]


def rewrap(
    keys: VolumeKeys, device: str, new_key: str | None = None, token_id: int | None = None
) -> tuple[Bound, Bound]:
    """Wrap a token's passphrase anew (``ReEncrypt``), to ``new_key`` or its key's current version.

    The passphrase and the keyslot stay as they are (no data is touched). The new blob is
    unwrapped, checked and tested against the keyslot with cryptsetup before the token is
    replaced, so a rewrap that would not unlock is never written. The new token is
    version 2 with a check made for the keyslot as it is now (a version-1 token gets its
    first check here). Returns the old and the new token.
    """
    old = only_token(device, token_id)
    facts = usable_key(keys, new_key or old.token.key_id)
    context = {**old.token.context, TENANT_CONTEXT_KEY: facts.account}
    prefix = f"{device}: token {old.token_id}: "
    try:
        blob, arn = keys.re_encrypt(
            old.token.wrapped_key, old.token.context, old.token.key_id, facts.arn, context
        )
    except StrongroomError as exc:
        raise annotate(exc, prefix) from None
    new_token = VolumeToken(old.token.keyslot, arn, blob, context)
    passphrase = unwrap(keys, device, Bound(old.token_id, new_token), "", keyslot_test=True)
    salt = read_header(device).keyslot_salt(old.token.keyslot)
    new = Bound(old.token_id, new_token.with_check(passphrase, salt))
    cryptsetup.import_token(device, new.token.to_json(), old.token_id, replace=True)
    return old, new


def shred(
    keys: VolumeKeys | None,
    device: str,
    token_id: int | None = None,
    *,
    disable_key: bool = False,
    last_keyslot: bool = False,
) -> dict[str, Any]:
    """Wipe a Strongroom keyslot and remove its token; optionally disable the KMS key too.

    Refuses to wipe the device's last keyslot (which destroys the volume's data for good)
    unless ``last_keyslot``. With ``disable_key`` the token's KMS key is disabled first
    (every volume wrapped by it then stops unlocking) — ``keys`` is needed for that only.
    """
    header = read_header(device)
    bound = only_token(device, token_id)
    slot = bound.token.keyslot
    if header.keyslots == [slot] and not last_keyslot:
        raise ValidationError(
            f"{device}: keyslot {slot} is the volume's last one: wiping it makes the data "
            "unreadable for good; give --last-keyslot to crypto-erase the volume."
        )
    if disable_key:
        if keys is None:
            raise ValidationError("Disabling the key needs the key service.")
        keys.disable_key(bound.token.key_id)
    if slot in header.keyslots:
        cryptsetup.kill_slot(device, slot)
    cryptsetup.remove_token(device, bound.token_id)
    return {
        "Device": device,
        "TokenId": bound.token_id,
        "Keyslot": slot,
        "KeyId": bound.token.key_id,
        "KeyDisabled": disable_key,
    }
