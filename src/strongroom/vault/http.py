"""The Vault-compatible HTTPS listener: the subset of Vault's HTTP API databases use.

Routes (all under ``/v1``, token in ``X-Vault-Token``):

- ``GET sys/mounts/<mount>/tune`` and ``GET sys/mounts/<mount>``: KV version 2;
- ``GET auth/token/lookup-self``;
- ``GET <mount>/data/<path>[?version=N]`` and ``GET <mount>/metadata/<path>`` (KV writes
  are refused with 405: keys are made with the CLI, see docs/mariadb.md);
- ``POST <mount>/encrypt/<key>``, ``POST <mount>/decrypt/<key>``,
  ``POST <mount>/datakey/(plaintext|wrapped)/<key>``.

Errors are Vault's ``{"errors": [...]}`` with 400/403/404/500. Hardening: a connection cap
(beyond it a connection is closed at once), a socket timeout per connection (handshake,
headers, body and idle keep-alive), a body size cap checked against Content-Length before
reading, and one thread per connection that nothing a client sends can crash.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from strongroom.errors import (
    AccessDeniedError,
    NotFoundError,
    StrongroomError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.vault.records import TokenInfo
from strongroom.vault.service import VaultFrontEnd

log = logging.getLogger("strongroom.vault")

DEFAULT_PORT = 8200
MAX_BODY_BYTES = 1 << 20
TIMEOUT_S = 30.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: VaultHttpServer
    timeout = TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs go to the audit chain, not stderr."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValidationError("request body too large")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ValidationError("request body is not JSON") from None
        if not isinstance(body, dict):
            raise ValidationError("request body is not a JSON object")
        return body

    def do_GET(self) -> None:
        """Reads."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Transit."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """Transit (PUT is POST in Vault)."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        front = self.server.front
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        info: TokenInfo | None = None
        operation, target = "Request", url.path[:200]
        try:
            body = self._body() if method == "POST" else {}
            info = front.authenticate(self.headers.get("X-Vault-Token"))
            if info is None:
                raise AccessDeniedError("permission denied")
            if len(parts) < 3 or parts[0] != "v1":
                raise NotFoundError("unsupported path")
            operation, answer = self._route(method, parts[1:], parse_qs(url.query), body, info)
        except StrongroomError as exc:
            status = 500
            if isinstance(exc, AccessDeniedError):
                status = 403
            elif isinstance(exc, UnsupportedOperationError):
                status = 405  # Vault's answer to a method a path does not serve
            elif isinstance(exc, NotFoundError):
                status = 404
            elif exc.http_status < 500:
                status = 400
            # a disabled or deleted KMS key: the secret exists but cannot be opened
            message = "permission denied" if status == 403 else exc.message
            front.record(info, operation, target, type(exc).__name__)
            self._send(status, {"errors": [] if status == 404 else [message]})
            return
        except Exception:
            log.exception("Vault request failed")
            front.record(info, operation, target, "InternalError")
            self._send(500, {"errors": ["internal error"]})
            return
        front.record(info, operation, target, "Success")
        self._send(200, answer)

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, list[str]],
        body: dict[str, Any],
        info: TokenInfo,
    ) -> tuple[str, dict[str, Any]]:
        front = self.server.front
        if parts[:2] == ["sys", "mounts"] and method == "GET" and len(parts) >= 3:
            kv_mount = front.mount_of(info, parts[2], "kv")
            options = {"version": "2"}
            return "ReadMount", {
                "type": "kv",
                "options": options,
                "data": {"type": "kv", "options": options},
                "description": kv_mount.name,
            }
        if parts == ["auth", "token", "lookup-self"] and method == "GET":
            return "LookupSelf", {
                "data": {
                    "accessor": info.accessor,
                    "display_name": info.name,
                    "policies": [info.mount],
                    "ttl": 0,
                }
            }
        mount, action, rest = parts[0], parts[1], "/".join(parts[2:])
        if method == "GET" and action == "data" and rest:
            versions = query.get("version", ["0"])
            try:
                version = int(versions[0])
            except ValueError:
                raise ValidationError("version must be a number") from None
            return "ReadSecret", front.kv_read(info, mount, rest, version or None)
        if method == "POST" and action in ("data", "metadata", "delete", "destroy") and rest:
            raise UnsupportedOperationError(
                "KV writes are not served over HTTP: make keys with "
                "'strongroom vault kv new-key' and retire them with 'strongroom vault kv retire'"
            )
        if method == "GET" and action == "metadata" and rest:
            return "ReadSecretMetadata", front.kv_metadata(info, mount, rest)
        if method == "POST" and action == "encrypt" and rest:
            return "Encrypt", front.transit_encrypt(info, mount, rest, body)
        if method == "POST" and action == "decrypt" and rest:
            return "Decrypt", front.transit_decrypt(info, mount, rest, body)
        if method == "POST" and action == "datakey" and len(parts) == 4:
            return "DataKey", front.transit_datakey(info, mount, parts[2], parts[3], body)
        raise NotFoundError("unsupported path")


class VaultHttpServer(ThreadingHTTPServer):
    """HTTPS with a connection cap; each connection on its own daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        front: VaultFrontEnd,
        address: tuple[str, int],
        context: ssl.SSLContext,
        max_connections: int = 256,
    ) -> None:
        self.front = front
        self._context = context
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a TCP connection (TLS is set up on its own thread, with a timeout)."""
        return self.socket.accept()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Refuse connections beyond the cap at once."""
        return self._slots.acquire(blocking=False)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Handshake with a timeout, then serve; always give the slot back."""
        try:
            request.settimeout(TIMEOUT_S)
            tls = self._context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
            self._slots.release()
            return
        try:
            super().process_request_thread(tls, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client errors (resets, timeouts) end the connection without a traceback."""

    def start(self) -> threading.Thread:
        """Serve on a background thread."""
        thread = threading.Thread(target=self.serve_forever, name="vault-http", daemon=True)
        thread.start()
        return thread
