"""A SPIFFE workload made of the real py-spiffe clients: run as a child process by the tests.

py-spiffe's generated protobuf module registers the same top-level symbols as
``strongroom.mesh.proto``, so it cannot share a process with the agent: the tests run this
script (``python spiffe_probe.py COMMAND ...``) with ``SPIFFE_ENDPOINT_SOCKET`` set. Each
command prints JSON lines on stdout; a refused call prints ``{"error": ..., "message": ...}``
and exits 3.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization


def _pem(cert: Any) -> str:
    pem: str = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return pem


def _out(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def x509() -> None:
    from spiffe import TrustDomain, WorkloadApiClient

    with WorkloadApiClient(default_timeout=10) as client:
        context = client.fetch_x509_context()
        bundles = client.fetch_x509_bundles()
    svid = context.default_svid
    td = svid.spiffe_id.trust_domain
    bundle = bundles.get_bundle_for_trust_domain(TrustDomain(str(td)))
    in_context = context.x509_bundle_set.get_bundle_for_trust_domain(td)
    _out(
        {
            "spiffe_id": str(svid.spiffe_id),
            "ids": [str(s.spiffe_id) for s in context.x509_svids],
            "chain": [_pem(c) for c in svid.cert_chain],
            "key_pem": svid.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii"),
            "bundle": sorted(_pem(c) for c in bundle.x509_authorities) if bundle else [],
            "context_bundle": sorted(_pem(c) for c in in_context.x509_authorities)
            if in_context
            else [],
        }
    )


def stream(updates: int) -> None:
    from spiffe import WorkloadApiClient

    done = threading.Event()
    seen: list[int] = []

    def on_success(context: Any) -> None:
        leaf = context.default_svid.leaf
        seen.append(leaf.serial_number)
        _out(
            {
                "serial": str(leaf.serial_number),
                "not_before": leaf.not_valid_before_utc.timestamp(),
                "not_after": leaf.not_valid_after_utc.timestamp(),
            }
        )
        if len(seen) >= updates:
            done.set()

    def on_error(error: Exception) -> None:
        _out({"error": type(error).__name__, "message": str(error)})
        done.set()

    with WorkloadApiClient() as client:
        handle = client.stream_x509_contexts(on_success, on_error, retry_connect=False)
        done.wait(30)
        handle.cancel()


def jwt(audience: str) -> None:
    from spiffe import JwtSvid, WorkloadApiClient

    with WorkloadApiClient(default_timeout=10) as client:
        svid = client.fetch_jwt_svid(audience={audience})
        checked = client.validate_jwt_svid(svid.token, audience)
        bundles = client.fetch_jwt_bundles()
    bundle = bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    assert bundle is not None
    local = JwtSvid.parse_and_validate(svid.token, bundle, {audience})
    _out(
        {
            "token": svid.token,
            "spiffe_id": str(svid.spiffe_id),
            "validated_by_agent": str(checked.spiffe_id),
            "validated_locally": str(local.spiffe_id),
            "audience": sorted(local.audience),
            "expiry": local.expiry,
        }
    )


def validate(token: str, audience: str) -> None:
    from spiffe import WorkloadApiClient

    with WorkloadApiClient(default_timeout=10) as client:
        checked = client.validate_jwt_svid(token, audience)
    _out({"spiffe_id": str(checked.spiffe_id)})


def no_header() -> None:
    """Call every RPC over plain grpcio without the ``workload.spiffe.io`` metadata."""
    import os

    import grpc
    from spiffe._proto import workload_pb2 as pb
    from spiffe._proto import workload_pb2_grpc

    target = os.environ["SPIFFE_ENDPOINT_SOCKET"]
    codes = {}
    with grpc.insecure_channel(target) as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)  # type: ignore[no-untyped-call]
        calls: dict[str, Callable[[], object]] = {
            "FetchX509SVID": lambda: next(iter(stub.FetchX509SVID(pb.X509SVIDRequest()))),
            "FetchX509Bundles": lambda: next(iter(stub.FetchX509Bundles(pb.X509BundlesRequest()))),
            "FetchJWTSVID": lambda: stub.FetchJWTSVID(pb.JWTSVIDRequest(audience=["a"])),
            "FetchJWTBundles": lambda: next(iter(stub.FetchJWTBundles(pb.JWTBundlesRequest()))),
            "ValidateJWTSVID": lambda: stub.ValidateJWTSVID(
                pb.ValidateJWTSVIDRequest(audience="a", svid="x.y.z")
            ),
        }
        for name, call in calls.items():
            try:
                call()
                codes[name] = "OK"
            except grpc.RpcError as exc:
                codes[name] = exc.code().name
    _out(codes)


def tls(peer_id: str) -> None:
    """A mutual-TLS echo through spiffe-tls: listen and dial with this workload's SVID."""
    from spiffe import SpiffeId, X509Source
    from spiffetls import ListenOptions, dial, listen
    from spiffetls.mode import ClientTlsMode, ServerTlsMode
    from spiffetls.tlsconfig.authorize import authorize_id

    expected = SpiffeId(peer_id)
    with X509Source(timeout_in_seconds=10) as source:
        server = listen(
            "127.0.0.1:0",
            source,
            ListenOptions(tls_mode=ServerTlsMode.MTLS, authorize_fn=authorize_id(expected)),
        )
        port = server.getsockname()[1]
        echoed: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            conn.do_handshake()
            echoed.append(conn.recv(1024))
            conn.sendall(b"pong")
            conn.shutdown()
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)  # a refused dial leaves it waiting
        thread.start()
        client = dial(f"127.0.0.1:{port}", source, ClientTlsMode.TLS, authorize_id(expected))
        client.sendall(b"ping")
        answer = client.recv(1024)
        client.close()
        thread.join(10)
        server.close()
    _out({"server_got": echoed[0].decode(), "client_got": answer.decode()})


def _become(uid: int) -> None:
    """Load every module first, then drop to ``uid``: the connection is made as that user."""
    import os

    # grpc imports these lazily: too late once /root (where Python lives) is shut
    import grpc._channel
    import grpc._interceptor
    import spiffe
    import spiffe._proto.workload_pb2_grpc
    import spiffetls

    del grpc, spiffe, spiffetls

    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--as-uid"]:
        _become(int(args[1]))
        args = args[2:]
    command, *args = args
    try:
        if command == "x509":
            x509()
        elif command == "stream":
            stream(int(args[0]))
        elif command == "jwt":
            jwt(args[0])
        elif command == "validate":
            validate(args[0], args[1])
        elif command == "no-header":
            no_header()
        elif command == "tls":
            tls(args[0])
        else:
            raise SystemExit(f"unknown command {command}")
    except Exception as exc:  # a refusal is the answer some tests want
        _out({"error": type(exc).__name__, "message": str(exc)})
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
