"""Key policies the kms tests put on a key, written once."""

from __future__ import annotations

import json

from strongroom.kms import Caller, KeyService


def deny_decrypt(service: KeyService, caller: Caller, key: str) -> None:
    """Put a key policy that allows the caller's account everything but ``kms:Decrypt``."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{caller.tenant}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    request = {"KeyId": key, "PolicyName": "default", "Policy": json.dumps(policy)}
    service.call(caller, "PutKeyPolicy", request)
