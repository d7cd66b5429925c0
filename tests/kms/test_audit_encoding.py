import json

from hypothesis import given
from hypothesis import strategies as st

from strongroom.kms.audit_log import AuditLog
from strongroom.kms.caller import Caller
from strongroom.ports import ManualClock

text = st.text(max_size=30)


@given(
    text,
    text,
    text,
    text,
    text,
    st.one_of(st.none(), text),
    text,
    text,
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
def test_the_call_template_matches_json_of_the_same_fields(
    access: str,
    tenant: str,
    principal: str,
    region: str,
    request_id: str,
    key_arn: str | None,
    operation: str,
    result: str,
    now: float,
) -> None:
    clock = ManualClock(now)
    log = AuditLog(store=None, clock=clock)  # type: ignore[arg-type]
    caller = Caller(tenant, principal, access, region)
    log.record_call(caller, request_id, operation, key_arn, result)
    log.record(
        {
            "requestId": request_id,
            "operation": operation,
            "account": tenant,
            "principal": principal,
            "accessKeyId": access,
            "region": region,
            "keyArn": key_arn,
            "result": result,
        }
    )
    fast, slow = log._pending
    assert fast == slow
    assert json.loads(fast)["requestId"] == request_id


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_event_times_are_written_as_json_writes_them(now: float) -> None:
    clock = ManualClock(now)
    log = AuditLog(store=None, clock=clock)  # type: ignore[arg-type]
    log.record_call(Caller("t", "p", "a", "r"), "id", "Decrypt", None, "Success")
    fast = json.loads(log._pending[0])
    assert fast["time"] == now
    assert log._pending[0].endswith(b',"time":' + json.dumps(now).encode() + b"}")
