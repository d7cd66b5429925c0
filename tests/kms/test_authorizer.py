"""Authorisation can't be bypassed: every key operation asks the kernel's authoriser.

The kernel requires an :class:`~strongroom.kms.authz.Authorizer` and has no allow-all
default. Running the tenancy, key policy and grant tests with a deny-all authoriser, or
with the standard one without its grants, makes them fail: those tests pass only because
the authoriser they are given decides, not because of how the service is put together.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.errors import AccessDeniedError
from strongroom.kms import Caller, KeyService
from strongroom.kms.authz import DenyAll, KeyAuthorizer
from strongroom.kms.kernel import Kernel
from strongroom.testing.service import sqlite_key_service, tenant_caller

from .conftest import AUTHORIZER_VARIABLE

HERE = Path(__file__).resolve().parent
AUTHZ_TESTS = ["test_tenancy.py", "test_policy.py", "test_grants.py"]


def _run_with(kind: str, files: list[str]) -> tuple[int, int]:
    """Run ``files`` (SQLite only) with the authoriser ``kind``; (failed or errors, passed)."""
    env = {**os.environ, AUTHORIZER_VARIABLE: kind}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not postgres and not pkcs11",
        ]
        + [str(HERE / f) for f in files],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (failed|passed|errors?)", tail)}
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    return failed, counts.get("passed", 0)


def test_the_standard_authorizer_passes_them() -> None:
    failed, passed = _run_with("standard", AUTHZ_TESTS)
    assert (failed, passed > 100) == (0, True)


@pytest.mark.parametrize("kind", ["deny-all", "no-grants"])
def test_a_weakened_authorizer_fails_them(kind: str) -> None:
    failed, _ = _run_with(kind, ["test_tenancy.py", "test_grants.py"])
    assert failed > 10


def test_deny_all_fails_the_policy_tests() -> None:
    # most of test_policy.py evaluates parsed policies directly; those through the service fail
    failed, _ = _run_with("deny-all", ["test_policy.py"])
    assert failed >= 5


def test_the_kernel_requires_an_authorizer(tmp_path: Path) -> None:
    from strongroom.kms import ManualClock
    from strongroom.rootkey import LocalRootOfTrust
    from strongroom.store import SqliteStore

    with pytest.raises(TypeError, match="authorizer"):
        Kernel(  # type: ignore[call-arg]
            SqliteStore(tmp_path / "s.db"),
            LocalRootOfTrust.create(tmp_path / "m.key"),
            ManualClock(),
        )


def test_deny_all_refuses_the_owner(tmp_path: Path) -> None:
    with sqlite_key_service(tmp_path, authorizer=DenyAll()) as service:
        alice = tenant_caller(service, "alice")
        key = service.call(alice, "CreateKey", {})["KeyMetadata"]["KeyId"]
        for operation, request in [
            ("DescribeKey", {"KeyId": key}),
            ("Encrypt", {"KeyId": key, "Plaintext": b"x"}),
            ("DisableKey", {"KeyId": key}),
            ("PutKeyPolicy", {"KeyId": key, "Policy": "{}"}),
            (
                "CreateGrant",
                {"KeyId": key, "GranteePrincipal": alice.principal_arn, "Operations": ["Decrypt"]},
            ),
        ]:
            with pytest.raises(AccessDeniedError):
                service.call(alice, operation, request)


def test_grants_allow_only_through_the_authorizer(tmp_path: Path) -> None:
    def decrypt_by_grantee(service: KeyService, alice: Caller) -> None:
        key = service.call(
            alice,
            "CreateKey",
            {"Policy": _owner_only(alice), "BypassPolicyLockoutSafetyCheck": True},
        )["KeyMetadata"]["KeyId"]
        bob = Caller(alice.tenant, f"arn:aws:iam::{alice.tenant}:user/bob", region=alice.region)
        service.call(
            alice,
            "CreateGrant",
            {"KeyId": key, "GranteePrincipal": bob.principal_arn, "Operations": ["Encrypt"]},
        )
        service.call(bob, "Encrypt", {"KeyId": key, "Plaintext": b"x"})

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with sqlite_key_service(tmp_path / "a") as service:
        decrypt_by_grantee(service, tenant_caller(service, "alice"))
    no_grants = KeyAuthorizer(use_grants=False)
    with sqlite_key_service(tmp_path / "b", authorizer=no_grants) as service:
        alice = tenant_caller(service, "alice")
        with pytest.raises(AccessDeniedError):
            decrypt_by_grantee(service, alice)


def _owner_only(alice: Caller) -> str:
    import json

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": alice.principal_arn},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
