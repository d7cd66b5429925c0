"""HMAC operations: GenerateMac and VerifyMac with HMAC KMS keys (RFC 2104, as AWS KMS).

A MAC is the bare HMAC tag (28, 32, 48 or 64 bytes), so a holder of the same key material
(an imported HMAC key) computes the same tag offline. VerifyMac compares in constant time
(``cryptography``'s :meth:`HMAC.verify`).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from strongroom.errors import InvalidKeyUsageError, InvalidMacError
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.keyspec import GENERATE_VERIFY_MAC, algorithms, wrong_usage
from strongroom.kms.messages.mac import (
    GenerateMacRequest,
    GenerateMacResponse,
    VerifyMacRequest,
    VerifyMacResponse,
)
from strongroom.ports import StoreTx

MAC_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "HMAC_SHA_224": hashes.SHA224,
    "HMAC_SHA_256": hashes.SHA256,
    "HMAC_SHA_384": hashes.SHA384,
    "HMAC_SHA_512": hashes.SHA512,
}
"""Each AWS MAC algorithm and its hash."""


def _mac(
    k: Kernel, ctx: OpContext, req: GenerateMacRequest | VerifyMacRequest, action: str
) -> tuple[str, HMAC]:
    """Resolve and check the key; return its ARN and an HMAC fed with the message."""
    algorithm = req.mac_algorithm

    def unit(tx: StoreTx) -> tuple[str, HMAC]:
        key = k.usable_key(tx, ctx, req.key_id, "crypto", action, None, req.grant_tokens)
        if key.key_usage != GENERATE_VERIFY_MAC:
            raise wrong_usage(key.arn, key.key_usage, action)
        if algorithm not in algorithms(key.key_spec, GENERATE_VERIFY_MAC):
            raise InvalidKeyUsageError(
                f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
            )
        mac = HMAC(k.materials.material(tx, key, key.current_version), MAC_HASHES[algorithm]())
        mac.update(req.message)
        return key.arn, mac

    return k.read(unit)


def generate_mac(k: Kernel, ctx: OpContext, req: GenerateMacRequest) -> GenerateMacResponse:
    """Return the HMAC of a 1-4096 byte message under an HMAC KMS key."""
    arn, mac = _mac(k, ctx, req, "GenerateMac")
    return GenerateMacResponse(key_id=arn, mac=mac.finalize(), mac_algorithm=req.mac_algorithm)


def verify_mac(k: Kernel, ctx: OpContext, req: VerifyMacRequest) -> VerifyMacResponse:
    """Check a MAC in constant time; a mismatch is ``KMSInvalidMacException``."""
    arn, mac = _mac(k, ctx, req, "VerifyMac")
    try:
        mac.verify(req.mac)
    except InvalidSignature as exc:
        raise InvalidMacError("") from exc
    return VerifyMacResponse(key_id=arn, mac_algorithm=req.mac_algorithm, mac_valid=True)
