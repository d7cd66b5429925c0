"""The plugin's parts: key ids, retries, error mapping, the socket file."""

from __future__ import annotations

import gc
import os
import socket
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom import errors
from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.k8s import KeyVersion, RetryPolicy, format_key_id, parse_key_id, parse_listen
from strongroom.k8s.retry import Retrier
from strongroom.k8s.server import (
    SWITCH_INTERVAL_SECONDS,
    clear_stale_socket,
    grpc_code,
    settle_for_serving,
)

if TYPE_CHECKING:
    from tests.k8s.conftest import Launcher

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# -- key ids --------------------------------------------------------------------------------


@given(
    region=st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"]),
    account=st.from_regex(r"\d{12}", fullmatch=True),
    key=st.uuids().map(str),
    version=st.integers(1, 2**32 - 1),
)
def test_key_id_round_trips(region: str, account: str, key: str, version: int) -> None:
    value = KeyVersion(f"arn:aws:kms:{region}:{account}:key/{key}", version)
    text = format_key_id(value)
    assert parse_key_id(text) == value
    assert len(text.encode()) <= 1024


@given(st.text(max_size=200))
def test_key_id_parser_refuses_anything_else(text: str) -> None:
    try:
        parsed = parse_key_id(text)
    except errors.ValidationError:
        return
    assert format_key_id(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        ARN,
        f"{ARN}#v",
        f"{ARN}#vx",
        f"{ARN}#v1 ",
        f"{ARN}#v1\n",
        "alias/k8s#v1",
        "arn:aws:kms:eu-west-1:111122223333:alias/k8s#v1",
        f"{ARN}#v12345678901",
    ],
)
def test_malformed_key_ids(text: str) -> None:
    with pytest.raises(errors.ValidationError):
        parse_key_id(text)


# -- retries --------------------------------------------------------------------------------


class Flaky:
    """Fails with the given errors, then answers."""

    def __init__(self, *failures: errors.StrongroomError) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def _retrier(policy: RetryPolicy, now: list[float], retried: list[str]) -> Retrier:
    def sleep(seconds: float) -> None:
        now[0] += seconds

    return Retrier(
        policy,
        clock=lambda: now[0],
        sleep=sleep,
        jitter=lambda: 1.0,
        on_retry=lambda op, err: retried.append(f"{op}:{err.aws_type}"),
    )


def test_transient_failures_are_retried_with_backoff() -> None:
    now, retried = [0.0], list[str]()
    retrier = _retrier(RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0), now, retried)
    flaky = Flaky(errors.DependencyTimeoutError("slow"), errors.StoreError("busy"))
    assert retrier.call("Encrypt", flaky) == "done"
    assert flaky.calls == 3
    assert now[0] == pytest.approx(0.1 + 0.2)
    assert retried == ["Encrypt:DependencyTimeoutException", "Encrypt:KMSInternalException"]


def test_retries_are_bounded() -> None:
    now, retried = [0.0], list[str]()
    retrier = _retrier(RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.15), now, retried)
    flaky = Flaky(*(errors.KMSInternalError("down") for _ in range(5)))
    with pytest.raises(errors.KMSInternalError):
        retrier.call("Decrypt", flaky)
    assert flaky.calls == 3
    assert now[0] == pytest.approx(0.1 + 0.15)  # capped at max_delay


def test_throttling_is_retried_client_errors_are_not() -> None:
    now, retried = [0.0], list[str]()
    retrier = _retrier(RetryPolicy(attempts=4), now, retried)
    throttled = Flaky(errors.ProtocolError("ThrottlingException", "slow down"))
    assert retrier.call("Encrypt", throttled) == "done"
    for failure in (
        errors.DisabledError("disabled"),
        errors.InvalidCiphertextError("bad"),
        errors.AccessDeniedError("no"),
    ):
        flaky = Flaky(failure)
        with pytest.raises(type(failure)):
            retrier.call("Decrypt", flaky)
        assert flaky.calls == 1


def test_no_retry_past_the_deadline() -> None:
    now, retried = [0.0], list[str]()
    retrier = _retrier(RetryPolicy(attempts=5, base_delay=0.5), now, retried)
    flaky = Flaky(*(errors.DependencyTimeoutError("slow") for _ in range(5)))
    with pytest.raises(errors.DependencyTimeoutError):
        retrier.call("Encrypt", flaky, deadline=0.8)
    assert flaky.calls == 2  # the first pause (0.5) fits before 0.8, the second (1.0) not
    assert now[0] == pytest.approx(0.5)


def test_retry_policy_checks_its_numbers() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)
    assert RetryPolicy(base_delay=0.1, max_delay=0.3).delay(5, 0.0) == pytest.approx(0.15)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "cls", "grpc_status"),
    [
        ("DisabledException", 400, errors.DisabledError, "FAILED_PRECONDITION"),
        ("KMSInvalidStateException", 400, errors.InvalidStateError, "FAILED_PRECONDITION"),
        ("InvalidCiphertextException", 400, errors.InvalidCiphertextError, "INVALID_ARGUMENT"),
        ("IncorrectKeyException", 400, errors.IncorrectKeyError, "INVALID_ARGUMENT"),
        ("NotFoundException", 400, errors.NotFoundError, "NOT_FOUND"),
        ("AccessDeniedException", 400, errors.AccessDeniedError, "PERMISSION_DENIED"),
        ("UnrecognizedClientException", 400, errors.AuthError, "UNAUTHENTICATED"),
        ("ThrottlingException", 400, errors.ProtocolError, "RESOURCE_EXHAUSTED"),
        ("KMSInternalException", 500, errors.KMSInternalError, "UNAVAILABLE"),
        ("ServiceUnavailable", 503, errors.KMSInternalError, "UNAVAILABLE"),
        ("DependencyTimeoutException", 503, errors.DependencyTimeoutError, "UNAVAILABLE"),
        ("SomethingNew", 400, errors.ProtocolError, "INVALID_ARGUMENT"),
    ],
)
def test_aws_errors_map_to_grpc_codes(code: str, status: int, cls: type, grpc_status: str) -> None:
    error = error_for_aws_type(code, "message", status)
    assert type(error) is cls
    if cls in (errors.AuthError, errors.ProtocolError):
        assert error.aws_type == code
    assert grpc_code(error) == grpc.StatusCode[grpc_status]


# -- the socket -----------------------------------------------------------------------------


def test_parse_listen() -> None:
    assert parse_listen("unix:///var/run/kmsplugin/kms.sock") == Path("/var/run/kmsplugin/kms.sock")
    assert parse_listen("unix:/tmp/kms.sock") == Path("/tmp/kms.sock")
    too_long = "unix:///" + "a" * 120
    for bad in ("/tmp/kms.sock", "tcp://127.0.0.1:1", "unix://relative.sock", too_long):
        with pytest.raises(errors.ValidationError):
            parse_listen(bad)


def test_socket_is_private_and_removed_on_stop(launch: Launcher, socket_dir: Path) -> None:
    running = launch()
    path = running.server.socket_path
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    running.channel.close()
    running.server.stop(grace=1.0)
    assert not path.exists()


def test_stale_socket_is_replaced_live_one_and_other_files_refused(
    launch: Launcher, socket_dir: Path
) -> None:
    stale = socket_dir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()  # the file stays, nobody listens
    running = launch(name="stale.sock")
    assert running.stub is not None
    with pytest.raises(errors.ValidationError, match="another process"):
        clear_stale_socket(running.server.socket_path)
    plain = socket_dir / "plain.sock"
    plain.write_text("not a socket")
    with pytest.raises(errors.ValidationError, match="not a socket"):
        clear_stale_socket(plain)
    assert plain.read_text() == "not a socket"
    clear_stale_socket(socket_dir / "missing.sock")  # nothing to do
    assert os.path.exists(running.server.socket_path)


def test_settling_for_serving_freezes_the_heap_and_shortens_the_switch_interval() -> None:
    interval = sys.getswitchinterval()
    try:
        settle_for_serving()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS)
        assert gc.get_freeze_count() > 0  # start-up objects out of every collection
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
