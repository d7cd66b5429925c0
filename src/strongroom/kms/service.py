"""The key service: every operation, one entry point, one audit trail.

:class:`KeyService` combines the operation mixins. :meth:`KeyService.call` is the single
entry point the API layer and in-process clients use: it validates the request against the
AWS service model, runs the operation as the caller, honours ``DryRun`` and records the
outcome in the audit log.
"""

from __future__ import annotations

import re
from typing import Any

from strongroom.errors import DryRunOperationError, StrongroomError, UnsupportedOperationError
from strongroom.kms.admin import AdminOps
from strongroom.kms.caller import Caller
from strongroom.kms.core import OpContext
from strongroom.kms.ops_aliases import AliasOps
from strongroom.kms.ops_asymmetric import AsymmetricOps
from strongroom.kms.ops_crypto import CryptoOps
from strongroom.kms.ops_grants import GrantOps
from strongroom.kms.ops_import import ImportOps
from strongroom.kms.ops_key_agreement import KeyAgreementOps
from strongroom.kms.ops_key_usage import KeyUsageOps
from strongroom.kms.ops_mac import MacOps
from strongroom.kms.ops_rotation import RotationOps
from strongroom.kms.ops_userkeys import UserKeyOps
from strongroom.kms.ops_userkeys_api import UserKeyApiOps
from strongroom.kms.ops_userkeys_methods import UserKeyMethods
from strongroom.kms.unoffered import refuse_unoffered

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def handler_name(operation: str) -> str:
    """``GenerateDataKeyWithoutPlaintext`` -> ``op_generate_data_key_without_plaintext``."""
    return "op_" + _CAMEL.sub("_", operation).lower()


class KeyService(
    GrantOps,
    AsymmetricOps,
    MacOps,
    ImportOps,
    UserKeyApiOps,
    UserKeyMethods,
    UserKeyOps,
    CryptoOps,
    RotationOps,
    KeyUsageOps,
    KeyAgreementOps,
    AliasOps,
    AdminOps,
):
    """The key service core: AWS KMS operations over an injected store and root of trust."""

    def call(
        self,
        caller: Caller,
        operation: str,
        request: dict[str, Any],
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one AWS KMS operation for ``caller``.

        ``request`` is the JSON request with blob members as ``bytes``; the response has
        blob members as ``bytes``. Every failure is a :class:`StrongroomError` subclass
        carrying its AWS error type.
        """
        ctx = OpContext(
            caller,
            operation,
            request_id or self.new_request_id(),
            dry_run=bool(request.get("DryRun")),
        )
        try:
            handler = self._handlers.get(operation)  # only operations of the model are kept
            if handler is None:
                if operation not in self.model.operations:
                    raise UnsupportedOperationError(f"Operation {operation} is not supported.")
                handler = getattr(self, handler_name(operation), None)
                if handler is None:
                    raise UnsupportedOperationError(f"{operation} is not supported by Strongroom.")
                self._handlers[operation] = handler
            self.model.validate(operation, request)
            refuse_unoffered(operation, request)
            response: dict[str, Any] = handler(ctx, request)
            if ctx.dry_run:
                raise DryRunOperationError(
                    "The request would have succeeded, but the DryRun option is set."
                )
        except StrongroomError as exc:
            self.record(ctx, exc.aws_type)
            raise
        self.record(ctx, "Success")
        return response

    def new_request_id(self) -> str:
        """Return a request id unique across processes: a random prefix and a counter."""
        return f"{self._request_prefix}-{next(self._request_counter):012x}"

    def run_maintenance(self) -> dict[str, list[str]]:
        """Rotate keys that are due and shred keys whose deletion date has passed."""
        return {"rotated": self.rotate_due_keys(), "deleted": self.delete_due_keys()}

    def close(self) -> None:
        """Flush the audit log and release the store and root of trust."""
        self.audit.flush()
        self.store.close()
        self.root.close()
