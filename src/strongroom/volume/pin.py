"""The Clevis pin: ``clevis-encrypt-strongroom`` and ``clevis-decrypt-strongroom``.

Clevis finds a pin as the executables ``clevis-encrypt-<name>`` and
``clevis-decrypt-<name>`` on ``PATH`` (installed here as console scripts), so everything
built on Clevis uses it unchanged: ``clevis encrypt strongroom CFG``, ``clevis luks bind
-d DEV strongroom CFG``, ``clevis luks pass``/``unlock``, the boot-time unlockers, and
Shamir sharing with other pins through ``sss``::

    clevis luks bind -d /dev/sdb strongroom '{"key": "alias/volumes", "endpoint": "https://kms:8443"}'
    clevis luks bind -d /dev/sdb sss '{"t": 1, "pins": {"tang": [{"url": "http://tang"}],
                                                        "strongroom": [{"key": "alias/volumes"}]}}'

Encrypt reads the secret on stdin and the configuration (JSON) as argv[1]: ``key``
(required: key id, ARN or alias), ``context`` (extra encryption context pairs),
``endpoint``, ``region``, ``profile``, ``ca_bundle`` (as the command options of that
name). It asks the KMS for a data key under ``context`` + ``strongroom:pin=clevis``,
writes the JWE of :mod:`.jwe` on stdout. Decrypt reads that JWE on stdin, asks the KMS to
unwrap the data key with the endpoint, region, profile and CA bundle recorded in the JWE
(credentials from the AWS chain: environment, profile files...), writes the secret.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO

from strongroom.errors import StrongroomError, ValidationError
from strongroom.volume.jwe import PinHeader, open_sealed, parse, pin_context, seal
from strongroom.volume.kms import VolumeKeys, connect
from strongroom.volume.output import write_out
from strongroom.volume.token import key_arn_parts

ENCRYPT_SUMMARY = "Encrypts using a Strongroom (AWS KMS API) key"
DECRYPT_SUMMARY = "Decrypts using a Strongroom (AWS KMS API) key"
CONFIG_MEMBERS = {"key", "context", "endpoint", "region", "profile", "ca_bundle"}
MAX_SECRET_BYTES = 64 * 1024
ENCRYPT_USAGE = f"""
Usage: clevis encrypt strongroom CONFIG < PLAINTEXT > JWE

{ENCRYPT_SUMMARY}

This command uses the following configuration properties:

  key: <string>        KMS key id, ARN or alias (REQUIRED)
  context: <object>    Extra encryption context pairs (strings)
  endpoint: <string>   KMS endpoint URL (default: the AWS chain's)
  region: <string>     Region to sign for
  profile: <string>    Named AWS profile for the credentials
  ca_bundle: <string>  CA certificates to verify the endpoint with
"""


def parse_config(text: str) -> dict[str, Any]:
    """The pin configuration: a JSON object of the members above, ``key`` required."""
    try:
        config = json.loads(text)
    except ValueError:
        raise ValidationError("Configuration is malformed!") from None
    if not isinstance(config, dict):
        raise ValidationError("Configuration is malformed!")
    unknown = set(config) - CONFIG_MEMBERS
    if unknown:
        raise ValidationError(f"Unknown configuration properties: {sorted(unknown)}.")
    if not isinstance(config.get("key"), str) or not config["key"]:
        raise ValidationError("Missing the required 'key' property!")
    for name in CONFIG_MEMBERS - {"key", "context"}:
        if config.get(name) is not None and not isinstance(config[name], str):
            raise ValidationError(f"The '{name}' property must be a string.")
    context = config.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise ValidationError("The 'context' property must be an object of strings.")
    return config


def encrypt(config: dict[str, Any], secret: bytes, keys: VolumeKeys | None = None) -> str:
    """The JWE of ``secret`` under a fresh data key of ``config['key']``."""
    context = pin_context(config.get("context"))
    own = keys is None
    if keys is None:
        keys = connect(
            endpoint_url=config.get("endpoint"),
            region=config.get("region"),
            profile=config.get("profile"),
            ca_bundle=config.get("ca_bundle"),
        )
    try:
        data_key, blob, arn = keys.generate_data_key(config["key"], context)
        header = PinHeader(
            key=arn,
            blob=blob,
            context=context,
            endpoint=config.get("endpoint") or keys.endpoint_url,
            region=config.get("region") or keys.region,
            profile=config.get("profile"),
            ca_bundle=config.get("ca_bundle") or os.environ.get("AWS_CA_BUNDLE") or None,
        )
        return seal(header, data_key, secret)
    finally:
        if own:
            keys.close()


def decrypt(jwe: str, keys: VolumeKeys | None = None) -> bytes:
    """The secret of a pin JWE: unwrap the data key at the KMS, then open the JWE."""
    parsed = parse(jwe)
    pin = parsed.pin
    own = keys is None
    if keys is None:
        region = key_arn_parts(pin.key)[0] if pin.key.startswith("arn:") else ""
        keys = connect(
            endpoint_url=pin.endpoint,
            region=pin.region,
            profile=pin.profile,
            ca_bundle=pin.ca_bundle,
            default_region=region,
        )
    try:
        data_key = keys.decrypt(pin.blob, pin.context, pin.key)
    finally:
        if own:
            keys.close()
    return open_sealed(parsed, data_key)


def _read_all(stream: BinaryIO) -> bytes:
    data = stream.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise ValidationError("The input is too large.")
    return data


def encrypt_main(argv: list[str] | None = None) -> int:
    """``clevis-encrypt-strongroom CONFIG [-y] < PLAINTEXT > JWE``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--summary"]:
        print(ENCRYPT_SUMMARY)
        return 0
    if sys.stdin.isatty() or not args:
        sys.stderr.write(ENCRYPT_USAGE)
        return 2
    try:
        config = parse_config(args[0])
        jwe = encrypt(config, _read_all(sys.stdin.buffer))
    except StrongroomError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return write_out(jwe.encode("ascii"))


def decrypt_main(argv: list[str] | None = None) -> int:
    """``clevis-decrypt-strongroom < JWE > PLAINTEXT``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--summary"]:
        # clevis-decrypt lists no summaries for decrypt pins (they exit 2), like tang's
        return 2
    if sys.stdin.isatty():
        sys.stderr.write("\nUsage: clevis decrypt strongroom < JWE > PLAINTEXT\n\n")
        return 2
    try:
        secret = decrypt(_read_all(sys.stdin.buffer).decode("ascii", "replace"))
    except StrongroomError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return write_out(secret)


def encrypt_script() -> None:
    """Console script ``clevis-encrypt-strongroom``."""
    sys.exit(encrypt_main())


def decrypt_script() -> None:
    """Console script ``clevis-decrypt-strongroom``."""
    sys.exit(decrypt_main())
