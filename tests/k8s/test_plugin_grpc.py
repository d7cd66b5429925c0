"""The plugin as kube-apiserver drives it: gRPC over a real unix socket, official proto."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from strongroom.k8s import JsonLogFormatter
from strongroom.k8s.proto import api_pb2
from strongroom.kms import Caller, KeyService

if TYPE_CHECKING:
    from tests.k8s.conftest import FakeClock, Launcher, Running

ALIAS = "alias/k8s-secrets"  # what the launch fixture's plugin encrypts under

# kube-apiserver's checks (k8s.io/apiserver .../envelope/kmsv2/envelope.go)
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"{_LABEL}(\.{_LABEL})+")


def details(error: grpc.RpcError) -> str:
    """The status details of ``error`` (grpc types them optional; these calls set them)."""
    text = error.details()
    assert text is not None
    return text


def sample(running: Running, name: str, **labels: str) -> float | None:
    return running.metrics.registry.get_sample_value(name, labels)


def kube_accepts(response: api_pb2.EncryptResponse) -> bool:
    size = sum(len(k) + len(v) for k, v in response.annotations.items())
    return (
        0 < len(response.ciphertext) <= 1024
        and 0 < len(response.key_id.encode()) <= 1024
        and all(_FQDN.fullmatch(k) and len(k) <= 253 for k in response.annotations)
        and size <= 32 * 1024
    )


def encrypt(stub: Any, plaintext: bytes, uid: str = "uid-1") -> api_pb2.EncryptResponse:
    response: api_pb2.EncryptResponse = stub.Encrypt(
        api_pb2.EncryptRequest(plaintext=plaintext, uid=uid), timeout=10
    )
    return response


def decrypt(stub: Any, sealed: api_pb2.EncryptResponse, uid: str = "uid-2") -> bytes:
    request = api_pb2.DecryptRequest(
        ciphertext=sealed.ciphertext, uid=uid, key_id=sealed.key_id, annotations=sealed.annotations
    )
    plaintext: bytes = stub.Decrypt(request, timeout=10).plaintext
    return plaintext


def status(stub: Any) -> api_pb2.StatusResponse:
    response: api_pb2.StatusResponse = stub.Status(api_pb2.StatusRequest(), timeout=10)
    return response


def rpc_error(call: Callable[..., Any], *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10)
    return info.value


def test_status_and_round_trip(launch: Launcher, key_arn: str) -> None:
    running = launch()
    answer = status(running.stub)
    assert (answer.version, answer.healthz) == ("v2", "ok")
    assert answer.key_id == f"{key_arn}#v1"
    seed = os.urandom(32)
    sealed = encrypt(running.stub, seed)
    assert kube_accepts(sealed)
    assert sealed.key_id == answer.key_id
    assert dict(sealed.annotations) == {"format.kms.strongroom.dev": b"1"}
    assert seed not in sealed.ciphertext
    assert decrypt(running.stub, sealed) == seed
    again = encrypt(running.stub, seed)
    assert again.ciphertext != sealed.ciphertext  # fresh nonce each time
    assert decrypt(running.stub, again) == seed


def test_rotation_changes_key_id_and_old_ciphertexts_still_decrypt(
    launch: Launcher, service: KeyService, alice: Caller, key_arn: str
) -> None:
    running = launch()
    sealed = [(encrypt(running.stub, seed := os.urandom(32)), seed)]
    key_ids = [status(running.stub).key_id]
    for version in (2, 3):
        service.call(alice, "RotateKeyOnDemand", {"KeyId": key_arn})
        answer = status(running.stub)
        assert answer.healthz == "ok"
        assert answer.key_id == f"{key_arn}#v{version}"
        assert answer.key_id not in key_ids
        key_ids.append(answer.key_id)
        fresh = encrypt(running.stub, seed := os.urandom(32))
        assert fresh.key_id == answer.key_id
        sealed.append((fresh, seed))
    for response, seed in sealed:
        assert decrypt(running.stub, response) == seed
    # a key_id that names an older version still decrypts anything under the key
    oldest = api_pb2.DecryptRequest(ciphertext=sealed[-1][0].ciphertext, key_id=key_ids[0], uid="x")
    assert running.stub.Decrypt(oldest, timeout=10).plaintext == sealed[-1][1]
    assert sample(running, "strongroom_k8s_plugin_key_id_changes_total") == 2


def test_alias_moved_to_another_key_changes_key_id_and_old_objects_decrypt(
    launch: Launcher, service: KeyService, alice: Caller, key_arn: str
) -> None:
    running = launch()
    before = encrypt(running.stub, seed := os.urandom(32))
    other = str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])
    service.call(alice, "UpdateAlias", {"AliasName": ALIAS, "TargetKeyId": other})
    assert status(running.stub).key_id == f"{other}#v1"
    after = encrypt(running.stub, os.urandom(32))
    assert after.key_id == f"{other}#v1"
    assert decrypt(running.stub, before) == seed  # decrypted under the key its key_id names


def test_disabled_key_is_unhealthy_refuses_encrypt_and_recovers(
    launch: Launcher, service: KeyService, alice: Caller, key_arn: str
) -> None:
    running = launch()
    sealed = encrypt(running.stub, seed := os.urandom(32))
    service.call(alice, "DisableKey", {"KeyId": key_arn})
    answer = status(running.stub)
    assert answer.healthz != "ok"
    assert "DisabledException" in answer.healthz
    assert answer.key_id == f"{key_arn}#v1"  # the last known key id, never empty
    error = rpc_error(running.stub.Encrypt, api_pb2.EncryptRequest(plaintext=b"k" * 32))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "DisabledException" in details(error)
    error = rpc_error(running.stub.Decrypt, api_pb2.DecryptRequest(ciphertext=sealed.ciphertext))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert sample(running, "strongroom_k8s_plugin_healthy") == 0
    service.call(alice, "EnableKey", {"KeyId": key_arn})
    assert status(running.stub).healthz == "ok"
    assert decrypt(running.stub, sealed) == seed
    assert decrypt(running.stub, encrypt(running.stub, seed)) == seed
    assert sample(running, "strongroom_k8s_plugin_healthy") == 1


def test_health_is_cached_for_its_ttl(
    launch: Launcher, service: KeyService, alice: Caller, key_arn: str, fake_clock: FakeClock
) -> None:
    clock = fake_clock
    running = launch(health_ttl=5.0, clock=clock)
    assert status(running.stub).healthz == "ok"
    service.call(alice, "DisableKey", {"KeyId": key_arn})
    clock.advance(4.9)
    assert status(running.stub).healthz == "ok"  # the cached answer
    clock.advance(0.2)
    assert "DisabledException" in status(running.stub).healthz
    service.call(alice, "EnableKey", {"KeyId": key_arn})
    assert status(running.stub).healthz != "ok"  # cached again
    clock.advance(5.0)
    assert status(running.stub).healthz == "ok"
    service.call(alice, "RotateKeyOnDemand", {"KeyId": key_arn})
    assert encrypt(running.stub, b"s" * 32).key_id == f"{key_arn}#v1"  # cached key id
    clock.advance(5.0)
    assert encrypt(running.stub, b"s" * 32).key_id == f"{key_arn}#v2"
    assert status(running.stub).key_id == f"{key_arn}#v2"


GARBAGE = [
    b"\x00",
    b"garbage" * 10,
    os.urandom(119),
    b"\x01\x01\x24" + b"x" * 120,
    b"\xff" * 1024,
]


@pytest.mark.parametrize("blob", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_ciphertexts_get_a_clean_error(launch: Launcher, key_arn: str, blob: bytes) -> None:
    running = launch()
    request = api_pb2.DecryptRequest(ciphertext=blob, key_id=f"{key_arn}#v1", uid="g")
    error = rpc_error(running.stub.Decrypt, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Traceback" not in details(error)
    assert status(running.stub).healthz == "ok"  # still serving


def test_altered_and_malformed_requests_get_a_clean_error(launch: Launcher, key_arn: str) -> None:
    running = launch()
    sealed = encrypt(running.stub, seed := os.urandom(32))
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    cases = {
        "flipped": api_pb2.DecryptRequest(ciphertext=bytes(flipped), key_id=sealed.key_id),
        "truncated": api_pb2.DecryptRequest(ciphertext=sealed.ciphertext[:-1]),
        "empty": api_pb2.DecryptRequest(ciphertext=b"", key_id=sealed.key_id),
        "too long": api_pb2.DecryptRequest(ciphertext=b"x" * 1025),
        "bad key id": api_pb2.DecryptRequest(ciphertext=sealed.ciphertext, key_id="alias/x"),
        "bad format": api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext, annotations={"format.kms.strongroom.dev": b"9"}
        ),
    }
    for name, request in cases.items():
        error = rpc_error(running.stub.Decrypt, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    for plaintext in (b"", b"x" * 513):
        error = rpc_error(running.stub.Encrypt, api_pb2.EncryptRequest(plaintext=plaintext))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # without key_id and annotations the configured key is used
    bare = api_pb2.DecryptRequest(ciphertext=sealed.ciphertext)
    assert running.stub.Decrypt(bare, timeout=10).plaintext == seed


def test_foreign_ciphertexts_get_a_clean_error(
    launch: Launcher, service: KeyService, alice: Caller, bob: Caller, key_arn: str
) -> None:
    running = launch()
    context = {"k8s-kms-plugin": "v2"}
    seed = os.urandom(32)
    # another key of the same tenant, same encryption context
    other = str(service.call(alice, "CreateKey", {})["KeyMetadata"]["Arn"])
    blob = service.call(
        alice, "Encrypt", {"KeyId": other, "Plaintext": seed, "EncryptionContext": context}
    )["CiphertextBlob"]
    request = api_pb2.DecryptRequest(ciphertext=blob, key_id=f"{key_arn}#v1")
    error = rpc_error(running.stub.Decrypt, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "IncorrectKeyException" in details(error)
    # the plugin's key, another encryption context
    blob = service.call(
        alice, "Encrypt", {"KeyId": key_arn, "Plaintext": seed, "EncryptionContext": {"a": "b"}}
    )["CiphertextBlob"]
    request = api_pb2.DecryptRequest(ciphertext=blob, key_id=f"{key_arn}#v1")
    assert rpc_error(running.stub.Decrypt, request).code() == grpc.StatusCode.INVALID_ARGUMENT
    # another tenant's key, the plugin's context, named by key id or not at all
    bob_key = str(service.call(bob, "CreateKey", {})["KeyMetadata"]["Arn"])
    blob = service.call(
        bob, "Encrypt", {"KeyId": bob_key, "Plaintext": seed, "EncryptionContext": context}
    )["CiphertextBlob"]
    for key_id in (f"{key_arn}#v1", f"{bob_key}#v1", ""):
        error = rpc_error(
            running.stub.Decrypt, api_pb2.DecryptRequest(ciphertext=blob, key_id=key_id)
        )
        assert error.code() in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.PERMISSION_DENIED,
        ), key_id
        assert bob.tenant not in details(error) or key_id.startswith(bob_key)
        assert seed.hex() not in details(error)
    assert status(running.stub).healthz == "ok"


def test_64_concurrent_callers(launch: Launcher) -> None:
    running = launch()
    barrier = threading.Barrier(64)

    def caller(index: int) -> list[bytes]:
        barrier.wait(timeout=30)
        out = []
        for round_ in range(4):
            seed = os.urandom(32)
            sealed = encrypt(running.stub, seed, uid=f"{index}-{round_}")
            assert decrypt(running.stub, sealed) == seed
            out.append(sealed.ciphertext)
        status(running.stub)
        return out

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(caller, range(64)))
    ciphertexts = [c for batch in results for c in batch]
    assert len(set(ciphertexts)) == 64 * 4
    text = running.metrics.render().decode()
    assert 'strongroom_k8s_plugin_requests_total{code="OK",method="Encrypt"} 256.0' in text
    assert 'strongroom_k8s_plugin_requests_total{code="OK",method="Decrypt"} 256.0' in text


def test_logs_are_json_with_uid_and_no_secrets(
    launch: Launcher, caplog: pytest.LogCaptureFixture
) -> None:
    running = launch()
    seed = os.urandom(32)
    with caplog.at_level(logging.DEBUG, logger="strongroom.k8s"):
        sealed = encrypt(running.stub, seed, uid="3f0c-uid-enc")
        decrypt(running.stub, sealed, uid="3f0c-uid-dec")
        rpc_error(running.stub.Decrypt, api_pb2.DecryptRequest(ciphertext=b"bad", uid="u-bad"))
    formatter = JsonLogFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "strongroom.k8s"]
    rpcs = {line.get("uid"): line for line in lines if line["message"] == "rpc"}
    assert rpcs["3f0c-uid-enc"]["method"] == "Encrypt"
    assert rpcs["3f0c-uid-enc"]["code"] == "OK"
    assert rpcs["3f0c-uid-enc"]["key_id"] == sealed.key_id
    assert rpcs["3f0c-uid-dec"]["method"] == "Decrypt"
    assert rpcs["u-bad"]["code"] == "INVALID_ARGUMENT"
    assert rpcs["u-bad"]["error"] == "InvalidCiphertextException"
    assert all(isinstance(line["latency_ms"], float) for line in rpcs.values())
    everything = "\n".join(formatter.format(r) for r in caplog.records)
    for secret in (seed.hex(), seed.hex().upper(), repr(seed)):
        assert secret not in everything
