"""AWS Signature Version 4 of a JSON ``POST``: the one signer of the botocore-free clients.

``strongroom encrypt``/``decrypt`` (:mod:`strongroom.data.kms_direct`) and the volume
commands and Clevis pin (:mod:`strongroom.volume.aws_json`) each send a few AWS JSON 1.1
requests; importing botocore to sign them costs several times the request itself. The
algorithm is AWS's (the HMAC-SHA256 key chain over a canonical request, as
``strongroom.api.sigv4`` checks it and ``tests`` compare with botocore's ``SigV4Auth``);
HMAC-SHA256 is OpenSSL's through :mod:`hmac`/:mod:`hashlib`, already loaded by the
interpreter, where importing ``cryptography`` would cost the volume unlock path more than
the signature. Nothing here imports ``typing``: this module is on the fast start paths.
"""

from __future__ import annotations

import hashlib
import hmac

CONTENT_TYPE = "application/x-amz-json-1.1"
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


def sign_post(
    *,
    host: str,
    path: str,
    region: str,
    service: str,
    credentials: tuple[str, str, str | None],
    target: str,
    body: bytes,
    amz_date: str,
) -> dict[str, str]:
    """The headers of a signed ``POST path`` carrying the JSON ``body`` for ``target``.

    ``host`` is the endpoint's ``host[:port]`` as sent; ``path`` is sent as is (endpoint
    paths are plain, ``/`` or ``/kms``, which SigV4's canonical URI leaves unchanged);
    ``credentials`` are the access key id, the secret access key and the session token
    (or ``None``); ``amz_date`` is the signing time, ``YYYYMMDDTHHMMSSZ``. The headers are
    ``content-type``, ``host``, ``x-amz-date``, ``x-amz-target``, with
    ``x-amz-security-token`` when there is a session token, and ``authorization``.
    """
    access_key_id, secret_access_key, session_token = credentials
    day = amz_date[:8]
    headers = {
        "content-type": CONTENT_TYPE,
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    if session_token:
        headers["x-amz-security-token"] = session_token
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            path,
            "",
            *(f"{name}:{headers[name].strip()}" for name in names),
            "",
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = _hmac(key, to_sign).hex()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers
