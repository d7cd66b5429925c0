"""The mesh authority over the API: what a remote ``strongroom mesh agent --endpoint`` asks for.

A Strongroom server answers, beside the AWS KMS operations and on the same endpoint,
``X-Amz-Target: StrongroomMesh.<Operation>`` (AWS JSON 1.1, SigV4 service ``kms``). The
operations, members and limits are in ``strongroom-mesh-2026-11-29.json`` beside this
module (botocore's model format, as the user-key operations):

=================  ====================================================================
operation          request -> response
=================  ====================================================================
GetMeshBundle      TrustDomain -> TrustDomain, X509Authorities (DER), JwtAuthorities (JWKS),
                   SpiffeBundle (the SPIFFE bundle, a JWK Set)
IssueX509Svid      SpiffeId, PublicKey (DER SPKI, P-256), TtlSeconds? ->
                   SpiffeId, CertificateChain (leaf + intermediate, DER), ExpiresAt
IssueJwtSvid       SpiffeId, Audience (1-32), TtlSeconds? -> SpiffeId, Token
ValidateJwtSvid    TrustDomain, Token, Audience -> SpiffeId, Claims (JSON)
ListMeshEntries    TrustDomain? -> Entries (EntryId, SpiffeId, Selectors, CreatedAt)
ListRevokedIds     TrustDomain -> SpiffeIds
RegisterMeshEntry  SpiffeId, Selectors (1-32) -> Entry
DeleteMeshEntry    EntryId -> Entry
RevokeMeshId       SpiffeId -> SpiffeId, AlreadyRevoked
=================  ====================================================================

Two roles, each an access key flag, neither a tenant's (``AccessDeniedException`` for any
other key, tenant administrators included): a key created with ``--mesh-agent`` has SVIDs
issued and JWT-SVIDs checked (an agent mints any identity of the trust domains it serves,
as a SPIRE agent does for the workloads it attests); a key created with ``--mesh-admin``
registers and unregisters workloads and revokes identities (what ``strongroom mesh
register --endpoint`` and its siblings send). Both may read bundles, entries and
revocations. An agent cannot start a trust domain's CA where no workload is registered; an
administrator can (as ``strongroom mesh bundle`` does on the key store). The private key
of an X.509-SVID never travels: the agent makes the key pair and sends the public half.
Every issue, validation and change, and every refused call, is audited (operation, access
key, SPIFFE ID, entry id, certificate serial; never a key or a token); the reads an agent
repeats every few seconds (bundle, entries, revocations) are counted in the API metrics
but not audited when they succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import AccessDeniedError, NotFoundError, StrongroomError, ValidationError
from strongroom.kms.caller import Caller
from strongroom.kms.wire_codec import MessageCodec
from strongroom.kms.wire_model import WireModel
from strongroom.mesh.identity.authority import stored_versions
from strongroom.mesh.identity.ca import MeshCA
from strongroom.mesh.identity.registry import RegistrationEntry, Registry, is_reserved
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.messages import SHAPES as MESH_SHAPES
from strongroom.mesh.messages import (
    DeleteMeshEntryRequest,
    DeleteMeshEntryResponse,
    GetMeshBundleRequest,
    GetMeshBundleResponse,
    IssueJwtSvidRequest,
    IssueJwtSvidResponse,
    IssueX509SvidRequest,
    IssueX509SvidResponse,
    ListMeshEntriesRequest,
    ListMeshEntriesResponse,
    ListRevokedIdsRequest,
    ListRevokedIdsResponse,
    MeshEntryType,
    RegisterMeshEntryRequest,
    RegisterMeshEntryResponse,
    RevokeMeshIdRequest,
    RevokeMeshIdResponse,
    ValidateJwtSvidRequest,
    ValidateJwtSvidResponse,
)
from strongroom.ports import Clock, RootOfTrust, Store

MESH_MODEL_FILE = "strongroom-mesh-2026-11-29.json"
MESH_MODEL_PATH = ("mesh", MESH_MODEL_FILE)
"""Where the model lies inside the ``strongroom`` package (for the API's shape codec)."""
MESH_TARGET_PREFIX = "StrongroomMesh"
MAX_CACHED_DOMAINS = 64
QUIET_READS = frozenset({"GetMeshBundle", "ListMeshEntries", "ListRevokedIds"})
"""Reads every agent repeats on its refresh beat: audited only when they fail."""
AGENT_OPERATIONS = frozenset({"IssueX509Svid", "IssueJwtSvid", "ValidateJwtSvid"})
ADMIN_OPERATIONS = frozenset({"RegisterMeshEntry", "DeleteMeshEntry", "RevokeMeshId"})
NOT_AN_AGENT = (
    "Only an access key created with --mesh-agent may have SVIDs issued by the mesh "
    "authority (strongroom admin access-key create --mesh-agent)."
)
NOT_A_MESH_ADMIN = (
    "Only an access key created with --mesh-admin may change the mesh's registrations and "
    "revocations (strongroom admin access-key create --mesh-admin)."
)
NOT_IN_THE_MESH = (
    "Only an access key created with --mesh-agent or --mesh-admin may call the mesh "
    "authority (strongroom admin access-key create --mesh-agent)."
)

AuditSink = Callable[[dict[str, Any]], None]


def load_mesh_model() -> WireModel:
    """The mesh service model shipped in the package, as a :class:`WireModel`."""
    return WireModel.load(MESH_MODEL_PATH)


def _public_key(der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise ValidationError("PublicKey is not a DER SubjectPublicKeyInfo.") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValidationError("PublicKey must be an ECDSA P-256 key.")
    return key


class MeshApiOps:
    """:meth:`call_mesh`: the mesh operations by name, over a key store and root of trust."""

    def __init__(
        self, store: Store, root_of_trust: RootOfTrust, clock: Clock, audit: AuditSink
    ) -> None:
        self._store = store
        self._root = root_of_trust
        self._clock = clock
        self._audit = audit
        self._model = load_mesh_model()
        self._codec = MessageCodec(self._model, MESH_SHAPES)
        self._registry = Registry(store, clock)
        self._authorities: dict[str, MeshCA] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
            "GetMeshBundle": self._get_bundle,
            "IssueX509Svid": self._issue_x509,
            "IssueJwtSvid": self._issue_jwt,
            "ValidateJwtSvid": self._validate_jwt,
            "ListMeshEntries": self._list_entries,
            "ListRevokedIds": self._list_revoked,
            "RegisterMeshEntry": self._register,
            "DeleteMeshEntry": self._delete_entry,
            "RevokeMeshId": self._revoke,
        }

    @property
    def operations(self) -> frozenset[str]:
        """The operation names this class answers."""
        return frozenset(self._handlers)

    def call_mesh(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one mesh operation for ``caller``; blobs are ``bytes`` both ways.

        Raises ``AccessDeniedError`` unless the caller's role may run ``operation``,
        ``ValidationError`` (AWS's wording) for a request the model refuses, and the CA's and
        registry's errors as they are.
        """
        event: dict[str, Any] = {
            "operation": operation,
            "requestId": request_id,
            "account": caller.tenant,
            "accessKeyId": caller.access_key_id,
        }
        try:
            _check_role(caller, operation)
            handler = self._handlers.get(operation)
            decode = self._codec.request_decoder(operation)
            encode = self._codec.response_encoder(operation)
            if handler is None or decode is None or encode is None:
                raise ValidationError(f"{operation} is not a mesh operation.")
            record = decode(request)  # validated as it is decoded
            event["role"] = "admin" if caller.is_mesh_admin else "agent"
            event["node"] = node_of(caller)
            response = encode(handler(record, event))
        except StrongroomError as err:
            self._audit({**event, "result": err.aws_type})
            raise
        if operation not in QUIET_READS:
            self._audit({**event, "result": "Success"})
        return response

    # -- the operations ---------------------------------------------------------------------

    def _authority(self, trust_domain: str, event: dict[str, Any]) -> MeshCA:
        domain = TrustDomain.parse(trust_domain)
        with self._lock:
            found = self._authorities.get(domain.name)
        if found is not None:
            return found
        if event.get("role") != "admin":  # the caller's role, set by call_mesh
            self._check_known(domain)
        ca = MeshCA.create(domain, self._store, self._root, self._clock)
        with self._lock:
            if len(self._authorities) >= MAX_CACHED_DOMAINS:
                self._authorities.clear()
            return self._authorities.setdefault(domain.name, ca)

    def _check_known(self, domain: TrustDomain) -> None:
        """An agent may start a trust domain's CA only where the operator registered workloads.

        Otherwise any name an agent sent would get a CA, keys and records of its own.
        """
        if any(self._store.read(lambda tx: stored_versions(tx, domain))):
            return
        if not self._registry.entries(domain):
            raise NotFoundError(
                f"Trust domain {domain.name} has no CA and no registration entries: register "
                "a workload in it first (strongroom mesh register)."
            )

    def _authority_of(self, spiffe_id: str, event: dict[str, Any]) -> tuple[MeshCA, SpiffeId]:
        sid = SpiffeId.parse(spiffe_id)
        event["spiffeId"] = str(sid)
        return self._authority(sid.trust_domain.name, event), sid

    def _get_bundle(
        self, request: GetMeshBundleRequest, event: dict[str, Any]
    ) -> GetMeshBundleResponse:
        ca = self._authority(request.trust_domain, event)
        event["trustDomain"] = ca.trust_domain.name
        return GetMeshBundleResponse(
            trust_domain=ca.trust_domain.name,
            x509_authorities=ca.trust_bundle_der(),
            jwt_authorities=json.dumps(ca.jwt_bundle(), sort_keys=True),
            spiffe_bundle=json.dumps(ca.spiffe_bundle(), sort_keys=True),
        )

    def _check_entitled(self, sid: SpiffeId, event: dict[str, Any]) -> None:
        """An agent gets only identities registered for its node, never the server's own."""
        node = event.get("node")
        if is_reserved(sid):
            raise AccessDeniedError(
                f"{sid} is reserved for the key server's own identities: no agent gets it."
            )
        if not self._registry.issuable(sid, node):
            raise AccessDeniedError(
                f"No registration entry lets node {node!r} have {sid}: an administrator "
                "registers it first (strongroom mesh register ... --node NODE)."
            )

    def _issue_x509(
        self, request: IssueX509SvidRequest, event: dict[str, Any]
    ) -> IssueX509SvidResponse:
        key = _public_key(request.public_key)
        ca, sid = self._authority_of(request.spiffe_id, event)
        self._check_entitled(sid, event)
        ttl = request.ttl_seconds
        svid = ca.issue_svid(sid, key, None if ttl is None else float(ttl))
        event["serial"] = format(svid.serial_number, "x")
        return IssueX509SvidResponse(
            spiffe_id=str(svid.spiffe_id),
            certificate_chain=svid.chain_der(),
            expires_at=svid.not_after,
        )

    def _issue_jwt(
        self, request: IssueJwtSvidRequest, event: dict[str, Any]
    ) -> IssueJwtSvidResponse:
        ca, sid = self._authority_of(request.spiffe_id, event)
        self._check_entitled(sid, event)
        ttl = request.ttl_seconds
        token = ca.new_jwt_svid(sid, list(request.audience), None if ttl is None else float(ttl))
        return IssueJwtSvidResponse(spiffe_id=str(sid), token=token.token)

    def _validate_jwt(
        self, request: ValidateJwtSvidRequest, event: dict[str, Any]
    ) -> ValidateJwtSvidResponse:
        ca = self._authority(request.trust_domain, event)
        svid = ca.validate_jwt_svid(request.token, request.audience)
        event["spiffeId"] = str(svid.spiffe_id)
        return ValidateJwtSvidResponse(
            spiffe_id=str(svid.spiffe_id), claims=json.dumps(svid.claims(), sort_keys=True)
        )

    def _list_entries(
        self, request: ListMeshEntriesRequest, event: dict[str, Any]
    ) -> ListMeshEntriesResponse:
        name = request.trust_domain
        entries = self._registry.entries(None if name is None else TrustDomain.parse(name))
        if event.get("role") != "admin":  # an agent sees what it may have issued
            entries = [e for e in entries if e.issuable_to(event.get("node"))]
        return ListMeshEntriesResponse(entries=tuple(_entry(e) for e in entries))

    def _list_revoked(
        self, request: ListRevokedIdsRequest, event: dict[str, Any]
    ) -> ListRevokedIdsResponse:
        ca = self._authority(request.trust_domain, event)
        return ListRevokedIdsResponse(spiffe_ids=tuple(sorted(ca.revoked())))

    def _register(
        self, request: RegisterMeshEntryRequest, event: dict[str, Any]
    ) -> RegisterMeshEntryResponse:
        event["spiffeId"] = str(request.spiffe_id)
        entry = self._registry.register(request.spiffe_id, request.selectors, request.node)
        event["entryId"] = entry.entry_id
        return RegisterMeshEntryResponse(entry=_entry(entry))

    def _delete_entry(
        self, request: DeleteMeshEntryRequest, event: dict[str, Any]
    ) -> DeleteMeshEntryResponse:
        event["entryId"] = request.entry_id
        entry = self._registry.unregister(request.entry_id)
        event["spiffeId"] = str(entry.spiffe_id)
        return DeleteMeshEntryResponse(entry=_entry(entry))

    def _revoke(self, request: RevokeMeshIdRequest, event: dict[str, Any]) -> RevokeMeshIdResponse:
        ca, sid = self._authority_of(request.spiffe_id, event)
        added = ca.revoke(sid)
        return RevokeMeshIdResponse(spiffe_id=str(sid), already_revoked=not added)


def _check_role(caller: Caller, operation: str) -> None:
    """Raise ``AccessDeniedError`` unless the caller's role may run ``operation``."""
    if operation in AGENT_OPERATIONS:
        allowed, refusal = caller.is_mesh_agent, NOT_AN_AGENT
    elif operation in ADMIN_OPERATIONS:
        allowed, refusal = caller.is_mesh_admin, NOT_A_MESH_ADMIN
    else:
        allowed, refusal = caller.is_mesh_agent or caller.is_mesh_admin, NOT_IN_THE_MESH
    if not allowed:
        raise AccessDeniedError(refusal)


def node_of(caller: Caller) -> str | None:
    """The node an agent key stands for: the user name of its principal."""
    arn = caller.principal_arn
    return arn.rsplit("/", 1)[1] if ":user/" in arn else None


def _entry(entry: RegistrationEntry) -> MeshEntryType:
    return MeshEntryType(
        entry_id=entry.entry_id,
        spiffe_id=str(entry.spiffe_id),
        selectors=tuple(str(s) for s in entry.selectors),
        created_at=entry.created_at,
        node=entry.node,
    )
