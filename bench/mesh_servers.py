"""What ``bench/mesh.py`` runs: certificates from ``MeshCA``, nginx, HAProxy and sidecars.

- :func:`issue_certificates`: a throwaway trust domain (SQLite store, local root key) whose
  :class:`~strongroom.mesh.identity.ca.MeshCA` issues the SVIDs of sidecar A and B and the server
  certificate of the direct-TLS nginx listener; written as PEM files (HAProxy wants chain
  and key in one file, the sidecars separate files).
- :class:`Stack`: starts and stops the processes: one nginx (plain HTTP backend + a TLS
  listener), two ``strongroom mesh proxy --config`` sidecars, two HAProxy processes.
- :func:`http_get`, :func:`refused_without_certificate`: sanity checks of each path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mesh_proc import process_tree

from strongroom.testing.server import free_port

TRUST_DOMAIN = "bench.example"
ID_A = f"spiffe://{TRUST_DOMAIN}/sidecar-a"
ID_B = f"spiffe://{TRUST_DOMAIN}/sidecar-b"
ID_SERVER = f"spiffe://{TRUST_DOMAIN}/backend"
SVID_TTL_S = 6 * 3600.0
BODY = b"ok\n"

NEEDED = {
    "wrk": "apt-get install -y wrk",
    "nginx": "apt-get install -y nginx",
    "haproxy": "apt-get install -y haproxy",
}


def missing_tools() -> list[str]:
    """The install commands of the tools that are not on PATH (nginx lives in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [cmd for tool, cmd in NEEDED.items() if shutil.which(tool, path=path) is None]


def tool(name: str) -> str:
    """The full path of an installed tool."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise SystemExit(f"{name} is not installed: {NEEDED[name]}")
    return found


# --- certificates -----------------------------------------------------------------------


def issue_certificates(folder: Path) -> dict[str, Path]:
    """Issue the SVIDs with a fresh ``MeshCA`` and write them to ``folder``; their paths."""
    from strongroom.mesh.identity.ca import MeshCA
    from strongroom.ports import SystemClock
    from strongroom.rootkey.local import LocalRootOfTrust
    from strongroom.store.sqlite import SqliteStore

    store = SqliteStore(folder / "ca.db")
    try:
        ca = MeshCA.create(TRUST_DOMAIN, store, LocalRootOfTrust(os.urandom(32)), SystemClock())
        paths = {"bundle": folder / "bundle.pem"}
        paths["bundle"].write_bytes(ca.trust_bundle_pem())
        for name, sid, names in (
            ("a", ID_A, ()),
            ("b", ID_B, ()),
            ("server", ID_SERVER, ("localhost", "127.0.0.1")),
        ):
            svid = ca.new_svid(sid, SVID_TTL_S, names)
            key = svid.key_pem()
            paths[name] = folder / f"{name}.pem"
            paths[f"{name}_key"] = folder / f"{name}.key"
            paths[f"{name}_haproxy"] = folder / f"{name}-haproxy.pem"
            paths[name].write_bytes(svid.chain_pem())
            for path, data in (
                (paths[f"{name}_key"], key),
                (paths[f"{name}_haproxy"], svid.chain_pem() + key),
            ):
                path.write_bytes(data)
                path.chmod(0o600)
        return paths
    finally:
        store.close()


# --- configurations ---------------------------------------------------------------------


def nginx_conf(folder: Path, plain: int, tls: int, certs: dict[str, Path]) -> str:
    """One worker: ``return 200`` on a plain port (the backend) and on a TLS port."""
    return f"""\
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {folder}/nginx-tmp;
    proxy_temp_path {folder}/nginx-tmp;
    fastcgi_temp_path {folder}/nginx-tmp;
    uwsgi_temp_path {folder}/nginx-tmp;
    scgi_temp_path {folder}/nginx-tmp;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:bench:10m;
    server {{
        listen 127.0.0.1:{plain} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{tls} ssl backlog=4096;
        ssl_certificate {certs["server"]};
        ssl_certificate_key {certs["server_key"]};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


_HAPROXY_COMMON = """\
global
    nbthread 1
    maxconn 8000
    ssl-server-verify required
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
"""


def haproxy_a_conf(listen: int, peer: int, certs: dict[str, Path]) -> str:
    """HAProxy A: plaintext in, mTLS out to HAProxy B with A's SVID."""
    return (
        _HAPROXY_COMMON
        + f"""\
frontend a_in
    bind 127.0.0.1:{listen} backlog 4096
    default_backend a_out
backend a_out
    server b 127.0.0.1:{peer} ssl crt {certs["a_haproxy"]} ca-file {certs["bundle"]} \
verify required ssl-min-ver TLSv1.3
"""
    )


def haproxy_b_conf(listen: int, upstream: int, certs: dict[str, Path]) -> str:
    """HAProxy B: mTLS in (a client certificate of the bundle required), plaintext out."""
    return (
        _HAPROXY_COMMON
        + f"""\
frontend b_in
    bind 127.0.0.1:{listen} ssl crt {certs["b_haproxy"]} ca-file {certs["bundle"]} \
verify required ssl-min-ver TLSv1.3 backlog 4096
    default_backend app
backend app
    server nginx 127.0.0.1:{upstream}
"""
    )


def sidecar_b_conf(listen: int, upstream: int, certs: dict[str, Path]) -> str:
    """Sidecar B: inbound mTLS listener that lets only A's SPIFFE ID through."""
    return f"""\
trust_domain: {TRUST_DOMAIN}
svid:
  files: {{cert: {certs["b"]}, key: {certs["b_key"]}, bundle: {certs["bundle"]}}}
inbound:
  - name: app
    listen: 127.0.0.1:{listen}
    upstream: 127.0.0.1:{upstream}
    allow: [{ID_A}]
"""


def sidecar_a_conf(listen: int, peer: int, certs: dict[str, Path]) -> str:
    """Sidecar A: outbound listener, plaintext in, mTLS to B (whose ID must be B's)."""
    return f"""\
trust_domain: {TRUST_DOMAIN}
svid:
  files: {{cert: {certs["a"]}, key: {certs["a_key"]}, bundle: {certs["bundle"]}}}
outbound:
  - name: to-b
    listen: 127.0.0.1:{listen}
    peer: 127.0.0.1:{peer}
    peer_id: {ID_B}
"""


# --- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """A started server process; its stderr goes to a file (sidecars: JSON log lines)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _handle: IO[bytes] | None = field(default=None, repr=False)

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines of the log (sidecars); other lines are skipped."""
        out = []
        for raw in self.log.read_text("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(raw))
        return out


def _start(name: str, command: list[str], folder: Path) -> Proc:
    log = folder / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Proc(name, popen, log, handle)


def wait_port(proc: Proc, port: int, timeout: float = 20.0) -> None:
    """Wait until ``127.0.0.1:port`` accepts connections (or fail if ``proc`` ended)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.popen.poll() is not None:
            tail = proc.log.read_text("utf-8", errors="replace")[-2000:]
            raise SystemExit(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{proc.name} did not listen on {port}") from None
            time.sleep(0.05)


def stop(proc: Proc) -> None:
    """SIGTERM, then SIGKILL after 10 s; close the log."""
    if proc.popen.poll() is None:
        proc.popen.terminate()
        try:
            proc.popen.wait(10)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
    if proc._handle is not None:
        proc._handle.close()


def sidecar_command() -> list[str]:
    """``strongroom`` (the console script next to this Python), or ``python -m strongroom.cli``."""
    script = Path(sys.executable).with_name("strongroom")
    if script.exists():
        return [str(script)]
    found = shutil.which("strongroom")
    return [found] if found else [sys.executable, "-m", "strongroom.cli"]


@dataclass
class Stack:
    """Every process of the benchmark, with the ports each path starts at."""

    folder: Path
    certs: dict[str, Path]
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)

    def start(self) -> None:
        """Write the configurations and start nginx, the sidecars and HAProxy."""
        names = ("nginx", "nginx_tls", "sidecar_a", "sidecar_b", "haproxy_a", "haproxy_b")
        self.ports = {name: free_port() for name in names}
        p, f = self.ports, self.folder
        (f / "nginx-tmp").mkdir(exist_ok=True)
        files = {
            "nginx.conf": nginx_conf(f, p["nginx"], p["nginx_tls"], self.certs),
            "sidecar-a.yaml": sidecar_a_conf(p["sidecar_a"], p["sidecar_b"], self.certs),
            "sidecar-b.yaml": sidecar_b_conf(p["sidecar_b"], p["nginx"], self.certs),
            "haproxy-a.cfg": haproxy_a_conf(p["haproxy_a"], p["haproxy_b"], self.certs),
            "haproxy-b.cfg": haproxy_b_conf(p["haproxy_b"], p["nginx"], self.certs),
        }
        for name, text in files.items():
            (f / name).write_text(text, encoding="utf-8")
        nginx = tool("nginx")
        self._run(
            "nginx",
            [nginx, "-p", str(f), "-c", str(f / "nginx.conf"), "-e", str(f / "nginx-error.log")],
            ("nginx", "nginx_tls"),
        )
        sidecar = sidecar_command()
        self._run(
            "sidecar_b",
            [*sidecar, "mesh", "proxy", "--config", str(f / "sidecar-b.yaml")],
            ("sidecar_b",),
        )
        self._run(
            "sidecar_a",
            [*sidecar, "mesh", "proxy", "--config", str(f / "sidecar-a.yaml")],
            ("sidecar_a",),
        )
        haproxy = tool("haproxy")
        for side in ("b", "a"):
            self._run(
                f"haproxy_{side}",
                [haproxy, "-db", "-f", str(f / f"haproxy-{side}.cfg")],
                (f"haproxy_{side}",),
            )

    def _run(self, name: str, command: list[str], ports: tuple[str, ...]) -> None:
        proc = self.procs[name] = _start(name, command, self.folder)
        for port in ports:
            wait_port(proc, self.ports[port])

    def pids(self, *names: str) -> list[int]:
        """The process ids of the named processes and their children (nginx's worker)."""
        out: list[int] = []
        for name in names:
            out += process_tree(self.procs[name].popen.pid)
        return out

    def close(self) -> None:
        """Stop everything (the sidecars log their counters when stopped)."""
        for proc in reversed(self.procs.values()):  # callers first: no refused refills
            stop(proc)

    def sidecar_stats(self, name: str) -> dict[str, int]:
        """The counters a sidecar logged when it stopped (after :meth:`close`)."""
        for line in reversed(self.procs[name].log_lines()):
            if line.get("message") == "stopped":
                return dict(line.get("stats", {}))
        return {}


# --- checks -----------------------------------------------------------------------------


def http_get(port: int, tls: bool = False, timeout: float = 10.0) -> tuple[int, bytes]:
    """One ``GET /`` to ``127.0.0.1:port`` (TLS without verification for the direct path)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    return status, body


def refused_without_certificate(port: int, bundle: Path) -> bool:
    """Whether an mTLS listener refuses a TLS client that shows no certificate (and plaintext)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        if http_get(port, timeout=5)[0] == 200:
            return False
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(bundle)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return not tls.recv(65536).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return True
