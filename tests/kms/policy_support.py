"""Key policies the kms tests put on a key, written once."""

from __future__ import annotations

import json

from strongroom.kms import Caller, KeyService


def policy_denying(account: str, action: str, principal: object = "*") -> str:
    """A key policy (JSON) allowing ``account`` everything but ``action`` to ``principal``."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": "*"},
        ],
    }
    return json.dumps(policy)


def deny_decrypt(service: KeyService, caller: Caller, key: str) -> None:
    """Put a key policy that allows the caller's account everything but ``kms:Decrypt``."""
    policy = policy_denying(caller.tenant, "kms:Decrypt")
    service.call(caller, "PutKeyPolicy", {"KeyId": key, "PolicyName": "default", "Policy": policy})
