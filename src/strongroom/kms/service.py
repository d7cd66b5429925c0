"""The key service: every operation, one entry point, one audit trail.

:class:`KeyService` is a composition, not a hierarchy: it builds one
:class:`~strongroom.kms.kernel.Kernel` (store, root of trust, clock, the required
:class:`~strongroom.kms.authz.Authorizer`, key material, audit) and
:meth:`KeyService.call` validates a request, decodes it into the operation's typed request
record (:mod:`strongroom.kms.messages`), runs its handler from the one table
:data:`strongroom.kms.ops.HANDLERS` as the caller, encodes the typed response back into a
dict, honours ``DryRun`` and records the outcome in the audit log. The in-process user-key
methods and the administrative methods (tenants, access keys) are plain functions over the
same kernel, exposed here as methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, Concatenate, Generic, NamedTuple, ParamSpec, TypeVar, overload

from strongroom.errors import DryRunOperationError, StrongroomError, UnsupportedOperationError
from strongroom.kms import admin
from strongroom.kms.audit_log import AuditLog
from strongroom.kms.authz import Authorizer, KeyAuthorizer
from strongroom.kms.caller import Caller
from strongroom.kms.hot_path import HotPath
from strongroom.kms.hot_requests import HOT_CALLS
from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.messages import SHAPES
from strongroom.kms.ops import HANDLERS, Handler
from strongroom.kms.ops.imports import delete_expired_material
from strongroom.kms.ops.keys import delete_due_keys
from strongroom.kms.ops.rotation import rotate_due_keys
from strongroom.kms.unoffered import (
    REQUIRED_HERE,
    UNOFFERED_MEMBERS,
    UNOFFERED_OPERATIONS,
    refuse_unoffered,
)
from strongroom.kms.userkeys import api as user_keys_api
from strongroom.kms.userkeys import methods as user_keys
from strongroom.kms.wire_codec import MessageCodec
from strongroom.kms.wire_model import WireModel
from strongroom.ports import Clock, RootOfTrust, Store

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
P = ParamSpec("P")
R = TypeVar("R")


def handler_name(operation: str) -> str:
    """``GenerateDataKeyWithoutPlaintext`` -> ``generate_data_key_without_plaintext``."""
    return _CAMEL.sub("_", operation).lower()


class _OnKernel(Generic[P, R]):
    """A function of the kernel, offered as a method of :class:`KeyService`."""

    def __init__(self, fn: Callable[Concatenate[Kernel, P], R]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, service: None, owner: type[KeyService]) -> _OnKernel[P, R]: ...

    @overload
    def __get__(self, service: KeyService, owner: type[KeyService]) -> Callable[P, R]: ...

    def __get__(
        self, service: KeyService | None, owner: type[KeyService]
    ) -> _OnKernel[P, R] | Callable[P, R]:
        if service is None:
            return self
        return partial(self.fn, service.kernel)


def _no_request(request: dict[str, Any]) -> None:
    return None


def _no_response(response: None) -> dict[str, Any]:
    return {}


class _Route(NamedTuple):
    """How one operation runs: request dict -> record, handler, record -> response dict."""

    decode: Callable[[dict[str, Any]], Any]
    handler: Handler
    encode: Callable[[Any], dict[str, Any]]
    refuses_members: bool


class KeyService:
    """The key service: AWS KMS operations over an injected store and root of trust.

    ``authorizer`` defaults to :class:`~strongroom.kms.authz.KeyAuthorizer` (tenancy, key
    policies, grants); the other options size the caches (see :class:`Kernel`).
    """

    def __init__(
        self,
        store: Store,
        root: RootOfTrust,
        clock: Clock,
        *,
        authorizer: Authorizer | None = None,
        user_keys_model: WireModel | None = None,
        **options: Any,
    ) -> None:
        self.kernel = Kernel(
            store,
            root,
            clock,
            authorizer=authorizer if authorizer is not None else KeyAuthorizer(),
            user_keys_model=user_keys_model or user_keys_api.load_user_keys_model(),
            **options,
        )

        self._codec = MessageCodec(self.kernel.model, SHAPES)
        self._routes: dict[str, _Route] = {}
        self.hot_path = HotPath(self.kernel)
        """Encrypt, Decrypt and GenerateDataKey from caches, with typed values (the API's)."""

    def __repr__(self) -> str:
        return f"KeyService(root={self.kernel.root.description})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the key service holds key material and cannot be pickled")

    # -- the collaborators callers reach ---------------------------------------------------

    @property
    def store(self) -> Store:
        """The store (wrapped so that writes end the record cache)."""
        return self.kernel.store

    @property
    def root(self) -> RootOfTrust:
        """The root of trust."""
        return self.kernel.root

    @property
    def clock(self) -> Clock:
        """The clock."""
        return self.kernel.clock

    @property
    def audit(self) -> AuditLog:
        """The audit log."""
        return self.kernel.audit

    @property
    def model(self) -> WireModel:
        """The AWS KMS service model requests are validated against."""
        return self.kernel.model

    # -- the AWS operations ----------------------------------------------------------------

    def call(
        self,
        caller: Caller,
        operation: str,
        request: dict[str, Any],
        request_id: str | None = None,
        *,
        direct: bool = True,
    ) -> dict[str, Any]:
        """Run one AWS KMS operation for ``caller``.

        ``request`` is the JSON request with blob members as ``bytes``; the response has
        blob members as ``bytes``. Every failure is a :class:`StrongroomError` subclass
        carrying its AWS error type. ``direct=False`` skips :attr:`hot_path` (a caller
        that has tried it already: the API).
        """
        kernel = self.kernel
        request_id = request_id or kernel.new_request_id()
        hot = HOT_CALLS.get(operation) if direct else None
        if hot is not None and type(request) is dict:
            # the common case in one direct path; anything else (and every error) below
            response = hot(self.hot_path, caller, request, request_id)
            if response is not None:
                return response
        kernel.audit.admit()  # fail-closed audit: refused, and not recorded, when it lags
        # positional: a keyword argument costs a dict per call on this path
        ctx = OpContext(caller, operation, request_id, bool(request.get("DryRun")))
        try:
            decode, handler, encode, refuses_members = self._routes.get(operation) or self._route(
                operation
            )
            record = decode(request)  # validated as it is decoded
            if refuses_members:
                refuse_unoffered(operation, request)
            response = encode(handler(kernel, ctx, record))
            if ctx.dry_run:
                raise DryRunOperationError(
                    "The request would have succeeded, but the DryRun option is set."
                )
        except StrongroomError as exc:
            kernel.record(ctx, exc.aws_type)
            raise
        kernel.record(ctx, "Success")
        return response

    def _route(self, operation: str) -> _Route:
        """Find (and remember) the handler and message codec of ``operation``."""
        handler = HANDLERS.get(operation)
        if handler is None:
            if operation not in self.kernel.model.operations:
                raise UnsupportedOperationError(f"Operation {operation} is not supported.")
            reason = UNOFFERED_OPERATIONS.get(operation)
            raise UnsupportedOperationError(
                f"{operation} is not supported by Strongroom" + (f": {reason}." if reason else ".")
            )
        route = _Route(
            self._codec.request_decoder(operation) or _no_request,
            handler,
            self._codec.response_encoder(operation) or _no_response,
            operation in UNOFFERED_MEMBERS or operation in REQUIRED_HERE,
        )
        self._routes[operation] = route
        return route

    def new_request_id(self) -> str:
        """Return a request id unique across processes: a random prefix and a counter."""
        return self.kernel.new_request_id()

    # -- user keys (in process and over the API) ---------------------------------------------

    call_user_keys = _OnKernel(user_keys_api.call_user_keys)
    encrypt_for_user = _OnKernel(user_keys.encrypt_for_user)
    generate_user_data_key = _OnKernel(user_keys.generate_user_data_key)
    create_user_keys = _OnKernel(user_keys.create_user_keys)
    destroy_user_key = _OnKernel(user_keys.destroy_user_key)
    user_key_exists = _OnKernel(user_keys.user_key_exists)
    count_user_keys = _OnKernel(user_keys.count_user_keys)

    # -- tenants and access keys -------------------------------------------------------------

    create_tenant = _OnKernel(admin.create_tenant)
    list_tenants = _OnKernel(admin.list_tenants)
    find_tenant = _OnKernel(admin.find_tenant)
    create_access_key = _OnKernel(admin.create_access_key)
    delete_access_key = _OnKernel(admin.delete_access_key)
    lookup_access_key = _OnKernel(admin.lookup_access_key)

    # -- maintenance -----------------------------------------------------------------------

    rotate_due_keys = _OnKernel(rotate_due_keys)

    def delete_due_keys(self) -> list[str]:
        """Delete expired imported material, then shred keys whose deletion date has passed."""
        delete_expired_material(self.kernel)
        return delete_due_keys(self.kernel)

    def run_maintenance(self) -> dict[str, list[str]]:
        """Rotate keys that are due and shred keys whose deletion date has passed."""
        return {"rotated": rotate_due_keys(self.kernel), "deleted": self.delete_due_keys()}

    def record(self, ctx: OpContext, result: str, detail: dict[str, Any] | None = None) -> None:
        """Queue one audit event for a request (see :meth:`Kernel.record`)."""
        self.kernel.record(ctx, result, detail)

    def close(self) -> None:
        """Flush the audit log (and checkpoint it), release the store and root of trust.

        The store and root are released even if the last flush fails (which is raised).
        """
        try:
            self.kernel.audit.close()
        finally:
            self.kernel.store.close()
            self.kernel.root.close()
