"""The audit trail outside the database: checkpoints, the start check, verification.

:class:`CheckpointFile` keeps the newest signed checkpoint of the audit chain's head in
``DATA_DIR/audit-checkpoint.json`` and logs each one as a JSON line (logger
``strongroom.audit.checkpoint``); :func:`check_at_start` refuses a store whose chain is
behind or differs from it; :func:`verify_audit` checks a whole chain against it.
"""

from strongroom.audittrail.checkpoint_file import CHECKPOINT_FILE, CheckpointFile
from strongroom.audittrail.startup import AuditBehindCheckpoint, check_at_start
from strongroom.audittrail.verify import VerifyReport, verify_audit

__all__ = [
    "CHECKPOINT_FILE",
    "AuditBehindCheckpoint",
    "CheckpointFile",
    "VerifyReport",
    "check_at_start",
    "verify_audit",
]
