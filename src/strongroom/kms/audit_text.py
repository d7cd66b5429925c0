"""The text of an operation call's audit event, built from pieces instead of ``json.dumps``.

:meth:`AuditLog.record_call <strongroom.kms.audit_log.AuditLog.record_call>` writes the
same bytes as :meth:`AuditLog.record <strongroom.kms.audit_log.AuditLog.record>` of the
same fields (sorted keys, no spaces, ASCII escapes): the part up to the request id
(:func:`call_prefix`, the same for every call of one caller, key and operation), the quoted
request id and result, and the time (:func:`event_time`).
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii

import orjson

from strongroom.kms.caller import Caller

quote = encode_basestring_ascii
"""A JSON string as ``json.dumps`` writes it (ASCII escapes)."""
SUCCESS_TIME = ',"result":"Success","time":'
"""What follows the request id in a successful call's event, up to its time."""
# the fields before "requestId" depend only on the caller, the key and the operation
_CALL_PREFIX = (
    '{"accessKeyId":%s,"account":%s,"keyArn":%s,"operation":%s,"principal":%s,'
    '"region":%s,"requestId":'
)


def call_prefix(caller: Caller, key_arn: str | None, operation: str) -> str:
    """The event's text up to (and with) the ``"requestId":`` member's name."""
    return _CALL_PREFIX % (
        quote(caller.access_key_id),
        quote(caller.tenant),
        "null" if key_arn is None else quote(key_arn),
        quote(operation),
        quote(caller.principal_arn),
        quote(caller.region),
    )


def event_time(now: float) -> str:
    """``repr(now)`` and the event's closing brace, as json writes them.

    orjson writes the same shortest round-trip digits as ``repr`` for a third of its cost,
    but formats exponents its own way: it is used only where repr writes none (every clock
    reading).
    """
    return orjson.dumps(now).decode("ascii") + "}" if 1e-4 <= now < 1e16 else f"{now!r}}}"
