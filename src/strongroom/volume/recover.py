"""Reaching a volume through its Strongroom tokens: find, unwrap, check, open; and status.

:func:`recover_passphrase` reads the LUKS2 header (in Python, :mod:`.header`), picks the
``strongroom`` tokens, asks the KMS to unwrap a token's passphrase with the token's
encryption context, and checks it before returning it, so a token that does not match
its keyslot is an error here rather than a failed mount later: against the token's keyed
check (version 2: one HMAC, no process), or with ``cryptsetup open --test-passphrase`` on
its keyslot (a version-1 token, or a check that does not match the keyslot as it is
now). :func:`unlock` maps the volume with ``cryptsetup open``, which tests the passphrase
itself; :func:`status` and ``rewrap`` always test with cryptsetup. Nothing is written.
"""

from __future__ import annotations

from strongroom.errors import IncorrectKeyError, StrongroomError, ValidationError
from strongroom.volume import cryptsetup
from strongroom.volume.header import Luks2Header, read_header
from strongroom.volume.token import (
    TOKEN_TYPE,
    VolumeToken,
    key_arn_parts,
    parse_token,
    passphrase_of,
)

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    from typing import Any

    from strongroom.volume.kms import VolumeKeys


class Bound:
    """A Strongroom token of a device: its token id and content (a slotted value)."""

    __slots__ = ("token", "token_id")

    def __init__(self, token_id: int, token: VolumeToken) -> None:
        self.token_id = token_id
        self.token = token

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bound):
            return NotImplemented
        return (self.token_id, self.token) == (other.token_id, other.token)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Bound(token_id={self.token_id}, token={self.token!r})"


def annotate(exc: StrongroomError, prefix: str) -> StrongroomError:
    """``exc`` with ``prefix`` in front of its message (same type, so same exit path)."""
    text = f"{prefix}{exc}"
    exc.args = (text,)
    exc.message = text
    return exc


def strongroom_tokens(header: Luks2Header, where: str) -> list[Bound]:
    """The device's ``strongroom`` tokens that hold a keyslot, by token id.

    A ``strongroom`` token whose keyslot was wiped (a ``shred`` cut short) is skipped;
    any other malformed one is an error.
    """
    found = []
    for token_id, obj in sorted(header.tokens.items()):
        if obj.get("type") != TOKEN_TYPE or obj.get("keyslots") == []:
            continue
        try:
            found.append(Bound(token_id, parse_token(obj, token_id)))
        except StrongroomError as exc:
            raise annotate(exc, f"{where}: ") from None
    return found


def select_tokens(header: Luks2Header, where: str, token_id: int | None = None) -> list[Bound]:
    """The tokens to try: token ``token_id``, or every Strongroom token of the device.

    Raises a :class:`~strongroom.errors.ValidationError` when there is none (naming the
    tokens of other types found) or when a token names another volume than this one.
    """
    tokens = strongroom_tokens(header, where)
    if token_id is not None:
        kind = header.tokens.get(token_id, {}).get("type")
        if kind is None:
            raise ValidationError(f"{where}: no token {token_id}.")
        tokens = [bound for bound in tokens if bound.token_id == token_id]
        if not tokens and kind == TOKEN_TYPE:
            raise ValidationError(f"{where}: token {token_id} has no keyslot (it was shredded).")
        if not tokens:
            raise ValidationError(
                f"{where}: token {token_id} is a {kind!r} token, not Strongroom's."
            )
    if not tokens:
        others = ", ".join(f"{i}: {o.get('type')}" for i, o in sorted(header.tokens.items()))
        raise ValidationError(
            f"{where}: no Strongroom token on this LUKS2 device"
            + (f" (other tokens: {others})." if others else ".")
        )
    for bound in tokens:
        if bound.token.volume.lower() != header.uuid.lower():
            raise ValidationError(
                f"{where}: token {bound.token_id} belongs to volume {bound.token.volume}, "
                f"not to this one ({header.uuid})."
            )
    return tokens


def region_hint(device: str) -> str:
    """The region of the first Strongroom token's key ARN ("" if none): the default region."""
    try:
        tokens = strongroom_tokens_or_none(read_header(device), device)
    except (StrongroomError, OSError):
        return ""
    return key_arn_parts(tokens[0].token.key_id)[0] if tokens else ""


def unwrap(
    keys: VolumeKeys, device: str, bound: Bound, salt: str, keyslot_test: bool | None = None
) -> bytes:
    """The keyslot passphrase of ``bound``, unwrapped by the KMS and checked.

    ``salt`` is the keyslot's KDF salt in the header (:meth:`.Luks2Header.keyslot_salt`).
    ``keyslot_test``: ``None`` checks a version-2 token's check and tests the passphrase
    with ``cryptsetup open --test-passphrase`` only if it does not match (the keyslot was
    rewritten since, or the token altered) or the token has none (version 1); ``True``
    always tests with cryptsetup; ``False`` never (the caller opens the keyslot next).
    """
    token = bound.token
    prefix = f"{device}: token {bound.token_id} (tenant {token.tenant}, key {token.key_id}): "
    if keyslot_test is None and token.check is None:
        keyslot_test = True
    # the test process reads the header while the KMS answers
    test = cryptsetup.PendingTest(device, token.keyslot) if keyslot_test else None
    try:
        try:
            passphrase = passphrase_of(keys.decrypt(token.wrapped_key, token.context, token.key_id))
        except BaseException:
            if test is not None:
                test.cancel()
            raise
        if test is not None:
            test.finish(passphrase)
        elif keyslot_test is None and not token.matches(passphrase, salt):
            cryptsetup.test_passphrase(device, passphrase, token.keyslot)
    except StrongroomError as exc:
        raise annotate(exc, prefix) from None
    return passphrase


def in_use(header: Luks2Header, device: str, bound: Bound) -> Bound:
    """``bound``, if the header has the keyslot it names (else a ValidationError)."""
    if bound.token.keyslot not in header.keyslots:
        raise ValidationError(
            f"{device}: token {bound.token_id} names keyslot {bound.token.keyslot}, "
            "which this volume does not have."
        )
    return bound


def recover_passphrase(
    keys: VolumeKeys, device: str, token_id: int | None = None
) -> tuple[bytes, Bound]:
    """The passphrase of the first Strongroom token of ``device`` that works, and the token.

    Tokens are tried in id order; if none works, the first token's error is raised.
    """
    header = read_header(device)
    candidates = select_tokens(header, device, token_id)
    first: StrongroomError | None = None
    for bound in candidates:
        try:
            salt = header.keyslot_salt(bound.token.keyslot)
            return unwrap(keys, device, in_use(header, device, bound), salt), bound
        except StrongroomError as exc:
            first = first or exc
    assert first is not None
    raise first


def unlock(
    keys: VolumeKeys,
    device: str,
    name: str,
    token_id: int | None = None,
    read_only: bool = False,
) -> Bound:
    """``cryptsetup open DEVICE NAME`` with the passphrase of a Strongroom token.

    Tokens are tried in id order, as by :func:`recover_passphrase`; ``cryptsetup open``
    tests each passphrase on its keyslot (no separate test), and a token whose passphrase
    does not open its keyslot passes the turn to the next. Without device-mapper (see
    :func:`~.cryptsetup.device_mapper_available`) this fails before asking the KMS
    anything.
    """
    if not cryptsetup.device_mapper_available():
        raise ValidationError(
            f"device-mapper is not available here ({cryptsetup.DM_CONTROL} does not open): "
            "cryptsetup cannot map volumes; `strongroom volume pass` still works."
        )
    header = read_header(device)
    options = ["--readonly"] if read_only else []
    first: StrongroomError | None = None
    for bound in select_tokens(header, device, token_id):
        try:
            passphrase = unwrap(keys, device, in_use(header, device, bound), "", keyslot_test=False)
        except StrongroomError as exc:
            first = first or exc
            continue
        try:
            cryptsetup.open_device(device, name, passphrase, bound.token.keyslot, options)
        except IncorrectKeyError as exc:  # not this keyslot's passphrase: try the next token
            first = first or annotate(exc, f"{device}: token {bound.token_id}: ")
            continue
        return bound  # any other cryptsetup failure (busy, name taken) was raised: no token helps
    assert first is not None
    raise first


def describe_token(token_id: int, obj: dict[str, Any]) -> dict[str, Any]:
    """What ``status`` shows of one token (any type); never the wrapped key."""
    shown: dict[str, Any] = {"TokenId": token_id, "Type": obj.get("type"), "Keyslots": []}
    shown["Keyslots"] = [int(s) for s in obj.get("keyslots") or [] if str(s).isdigit()]
    if obj.get("type") == TOKEN_TYPE and shown["Keyslots"]:
        try:
            token = parse_token(obj, token_id)
        except StrongroomError as exc:
            shown["Error"] = str(exc)
        else:
            shown.update(
                KeyId=token.key_id,
                Tenant=token.tenant,
                EncryptionContext=token.context,
                Version=token.version,
            )
    return shown


def status(device: str, keys: VolumeKeys | None = None) -> dict[str, Any]:
    """The device's UUID, keyslots and tokens; with ``keys``, whether each token unlocks."""
    header = read_header(device)
    tokens = [describe_token(i, obj) for i, obj in sorted(header.tokens.items())]
    for shown in tokens:
        volume = shown.get("EncryptionContext", {}).get("strongroom:volume")
        if volume is not None and volume.lower() != header.uuid.lower():
            shown["Error"] = f"belongs to volume {volume}, not to this one"
    if keys is not None:
        for shown, bound in _pairs(tokens, strongroom_tokens_or_none(header, device)):
            try:
                unwrap(keys, device, in_use(header, device, bound), "", keyslot_test=True)
                shown["Unlocks"] = True
            except StrongroomError as exc:
                shown["Unlocks"] = False
                shown["Error"] = str(exc)
    return {
        "Device": device,
        "Uuid": header.uuid,
        "Keyslots": header.keyslots,
        "Tokens": tokens,
    }


def strongroom_tokens_or_none(header: Luks2Header, where: str) -> list[Bound]:
    """:func:`strongroom_tokens` without the malformed ones (status reports those)."""
    found = []
    for token_id, obj in sorted(header.tokens.items()):
        if obj.get("type") == TOKEN_TYPE and obj.get("keyslots"):
            try:
                found.append(Bound(token_id, parse_token(obj, token_id)))
            except StrongroomError:
                continue
    return found


def _pairs(shown: list[dict[str, Any]], bound: list[Bound]) -> list[tuple[dict[str, Any], Bound]]:
    by_id = {b.token_id: b for b in bound}
    return [(s, by_id[s["TokenId"]]) for s in shown if s["TokenId"] in by_id]
