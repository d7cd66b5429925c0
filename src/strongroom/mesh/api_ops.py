"""The mesh authority over the API: what a remote ``strongroom mesh agent --endpoint`` asks for.

A Strongroom server answers, beside the AWS KMS operations and on the same endpoint,
``X-Amz-Target: StrongroomMesh.<Operation>`` (AWS JSON 1.1, SigV4 service ``kms``). The
operations, members and limits are in ``strongroom-mesh-2026-11-29.json`` beside this
module (botocore's model format, as the user-key operations):

=================  ====================================================================
operation          request -> response
=================  ====================================================================
GetMeshBundle      TrustDomain -> TrustDomain, X509Authorities (DER), JwtAuthorities (JWKS)
IssueX509Svid      SpiffeId, PublicKey (DER SPKI, P-256), TtlSeconds? ->
                   SpiffeId, CertificateChain (leaf + intermediate, DER), ExpiresAt
IssueJwtSvid       SpiffeId, Audience (1-32), TtlSeconds? -> SpiffeId, Token
ValidateJwtSvid    TrustDomain, Token, Audience -> SpiffeId, Claims (JSON)
ListMeshEntries    TrustDomain -> Entries (EntryId, SpiffeId, Selectors)
ListRevokedIds     TrustDomain -> SpiffeIds
=================  ====================================================================

Only an access key created with ``--mesh-agent`` may call them (``AccessDeniedException``
for any other, tenant administrators included): an agent mints any identity of the trust
domains it serves, as a SPIRE agent does for the workloads it attests, so it is a
platform role, not a tenant's. The private key of an X.509-SVID never travels: the agent
makes the key pair and sends the public half. Every issue and validation, and every
refused call, is audited (operation, access key, SPIFFE ID, certificate serial; never a key
or a token); the reads an agent repeats every few seconds (bundle, entries, revocations)
are counted in the API metrics but not audited when they succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import AccessDeniedError, NotFoundError, StrongroomError, ValidationError
from strongroom.kms.caller import Caller
from strongroom.kms.ports import Clock, RootOfTrust, Store
from strongroom.kms.wire_model import WireModel
from strongroom.mesh.authority import stored_versions
from strongroom.mesh.ca import MeshCA
from strongroom.mesh.registry import Registry
from strongroom.mesh.spiffe_id import SpiffeId, TrustDomain

MESH_MODEL_FILE = "strongroom-mesh-2026-11-29.json"
MESH_MODEL_PATH = ("mesh", MESH_MODEL_FILE)
"""Where the model lies inside the ``strongroom`` package (for the API's shape codec)."""
MESH_TARGET_PREFIX = "StrongroomMesh"
MAX_CACHED_DOMAINS = 64
QUIET_READS = frozenset({"GetMeshBundle", "ListMeshEntries", "ListRevokedIds"})
"""Reads every agent repeats on its refresh beat: audited only when they fail."""
NOT_AN_AGENT = (
    "Only an access key created with --mesh-agent may call the mesh authority "
    "(strongroom admin access-key create --mesh-agent)."
)

AuditSink = Callable[[dict[str, Any]], None]


def load_mesh_model() -> WireModel:
    """The mesh service model shipped in the package, as a :class:`WireModel`."""
    text = resources.files("strongroom.mesh").joinpath(MESH_MODEL_FILE).read_text("utf-8")
    raw = json.loads(text)
    return WireModel(shapes=raw["shapes"], operations=raw["operations"])


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
        self._registry = Registry(store, clock)
        self._authorities: dict[str, MeshCA] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
            "GetMeshBundle": self._get_bundle,
            "IssueX509Svid": self._issue_x509,
            "IssueJwtSvid": self._issue_jwt,
            "ValidateJwtSvid": self._validate_jwt,
            "ListMeshEntries": self._list_entries,
            "ListRevokedIds": self._list_revoked,
        }

    @property
    def operations(self) -> frozenset[str]:
        """The operation names this class answers."""
        return frozenset(self._handlers)

    def call_mesh(
        self, caller: Caller, operation: str, request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """Run one mesh operation for ``caller``; blobs are ``bytes`` both ways.

        Raises ``AccessDeniedError`` unless the caller is a mesh agent, ``ValidationError``
        (AWS's wording) for a request the model refuses, and the CA's errors as they are.
        """
        event: dict[str, Any] = {
            "operation": operation,
            "requestId": request_id,
            "account": caller.tenant,
            "accessKeyId": caller.access_key_id,
        }
        try:
            if not caller.is_mesh_agent:
                raise AccessDeniedError(NOT_AN_AGENT)
            handler = self._handlers.get(operation)
            if handler is None:
                raise ValidationError(f"{operation} is not a mesh operation.")
            self._model.validate(operation, request)
            response = handler(request, event)
        except StrongroomError as err:
            self._audit({**event, "result": err.aws_type})
            raise
        if operation not in QUIET_READS:
            self._audit({**event, "result": "Success"})
        return response

    # -- the operations ---------------------------------------------------------------------

    def _authority(self, trust_domain: str) -> MeshCA:
        domain = TrustDomain.parse(trust_domain)
        with self._lock:
            found = self._authorities.get(domain.name)
        if found is not None:
            return found
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
        return self._authority(sid.trust_domain.name), sid

    def _get_bundle(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        ca = self._authority(request["TrustDomain"])
        event["trustDomain"] = ca.trust_domain.name
        return {
            "TrustDomain": ca.trust_domain.name,
            "X509Authorities": ca.trust_bundle_der(),
            "JwtAuthorities": json.dumps(ca.jwt_bundle(), sort_keys=True),
        }

    def _issue_x509(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        key = _public_key(request["PublicKey"])
        ca, sid = self._authority_of(request["SpiffeId"], event)
        ttl = request.get("TtlSeconds")
        svid = ca.issue_svid(sid, key, None if ttl is None else float(ttl))
        event["serial"] = format(svid.serial_number, "x")
        return {
            "SpiffeId": str(svid.spiffe_id),
            "CertificateChain": svid.chain_der(),
            "ExpiresAt": svid.not_after,
        }

    def _issue_jwt(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        ca, sid = self._authority_of(request["SpiffeId"], event)
        ttl = request.get("TtlSeconds")
        token = ca.new_jwt_svid(sid, list(request["Audience"]), None if ttl is None else float(ttl))
        return {"SpiffeId": str(sid), "Token": token.token}

    def _validate_jwt(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        ca = self._authority(request["TrustDomain"])
        svid = ca.validate_jwt_svid(request["Token"], request["Audience"])
        event["spiffeId"] = str(svid.spiffe_id)
        return {
            "SpiffeId": str(svid.spiffe_id),
            "Claims": json.dumps(svid.claims(), sort_keys=True),
        }

    def _list_entries(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        domain = TrustDomain.parse(request["TrustDomain"])
        entries = self._registry.entries(domain)
        return {
            "Entries": [
                {
                    "EntryId": e.entry_id,
                    "SpiffeId": str(e.spiffe_id),
                    "Selectors": [str(s) for s in e.selectors],
                }
                for e in entries
            ]
        }

    def _list_revoked(self, request: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        ca = self._authority(request["TrustDomain"])
        return {"SpiffeIds": sorted(ca.revoked())}
