"""Audit events of calls stay byte-identical to JSON when their prefixes are reused."""

import json

from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.audit_log import AuditLog
from strongroom.kms.caller import Caller
from strongroom.ports import ManualClock

text = st.text(max_size=12)
callers = st.builds(Caller, text, text, text, text)
calls = st.tuples(
    st.integers(0, 2),  # which caller
    text,  # request id
    st.none() | st.sampled_from(["arn:aws:kms:r:1:key/a", "arn:aws:kms:r:1:key/\u00e9"]),
    st.sampled_from(["Decrypt", "Encrypt"]),
    st.sampled_from(["Success", "AccessDeniedException"]),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
)


@given(st.lists(callers, min_size=3, max_size=3), st.lists(calls, min_size=1, max_size=20))
def test_repeated_calls_match_json_of_their_fields(
    who: list[Caller], made: list[tuple[int, str, str | None, str, str, float]]
) -> None:
    clock = ManualClock(0.0)
    log = AuditLog(store=None, clock=clock)  # type: ignore[arg-type]
    for index, request_id, key_arn, operation, result, now in made + made:
        caller = who[index]
        clock.advance(now - clock.now())
        log.record_call(caller, request_id, operation, key_arn, result)
        fast = log._pending.pop()
        log.record(
            {
                "requestId": request_id,
                "operation": operation,
                "account": caller.tenant,
                "principal": caller.principal_arn,
                "accessKeyId": caller.access_key_id,
                "region": caller.region,
                "keyArn": key_arn,
                "result": result,
            }
        )
        assert fast == log._pending.pop()
        assert json.loads(fast)["requestId"] == request_id


def test_equal_callers_in_different_objects_get_their_own_fields() -> None:
    log = AuditLog(store=None, clock=ManualClock(1.0))  # type: ignore[arg-type]
    first = Caller("111122223333", "arn:aws:iam::111122223333:user/a", "AKIA1")
    log.record_call(first, "r1", "Decrypt", None, "Success")
    second = Caller("444455556666", "arn:aws:iam::444455556666:user/b", "AKIA2")
    log.record_call(second, "r2", "Decrypt", None, "Success")
    bodies = [json.loads(b) for b in log._pending]
    assert [b["account"] for b in bodies] == ["111122223333", "444455556666"]
    assert [b["accessKeyId"] for b in bodies] == ["AKIA1", "AKIA2"]


@given(
    callers,
    text,
    st.sampled_from(["arn:aws:kms:r:1:key/a", "arn:aws:kms:r:1:key/\u00e9"]),
    st.sampled_from(["Decrypt", "Encrypt", "GenerateDataKey"]),
    st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.sampled_from([1e-5, 2e16]),
)
def test_a_key_use_is_the_success_event_and_the_keys_newest_use(
    caller: Caller, request_id: str, key_arn: str, operation: str, now: float
) -> None:
    log = AuditLog(store=None, clock=ManualClock(0.0))  # type: ignore[arg-type]
    for _ in range(2):  # the second time through the remembered prefix
        log.record_use(caller, request_id, operation, key_arn, now)
        used = log._pending.pop()
        log.record_call(caller, request_id, operation, key_arn, "Success", now)
        assert used == log._pending.pop()
        assert json.loads(used)["time"] == now
        use = log.key_uses.latest(key_arn)
        assert use is not None
        assert (use.operation, use.timestamp, use.request_id) == (operation, now, request_id)
