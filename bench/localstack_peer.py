"""LocalStack's KMS as a peer for ``bench/kms_api.py``, run on the host without Docker.

LocalStack ships its runtime on PyPI (``localstack-core``); its container only wraps that
package. Releases from 2026 on need Python 3.12 or newer (they use PEP 695 generics), so
the peer gets its own virtualenv, made once from the newest CPython 3.12+ found here
(``python3.1x`` on ``PATH``, then pyenv's versions) and kept in
``~/.cache/strongroom-bench/``. Three of its dependencies need an older release than the
newest on PyPI, found by starting it on this machine (2026-12-06): cbor2 6 dropped the
``cbor2._decoder`` module LocalStack imports, pyOpenSSL 26 dropped
``X509.add_extensions`` it signs its self-signed certificate with (pyOpenSSL 25.1 with
cryptography 45), and twisted's TLS needs ``service_identity``, which the runtime extra
does not list. The gateway serves HTTP and HTTPS on one port; HTTPS uses the self-signed
certificate LocalStack makes for itself (its download of a signed one needs the
internet), so the clients here do not verify it.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from kms_api_servers import Target

from strongroom.testing.server import free_port

KEY = "localstack"
CACHE = Path.home() / ".cache" / "strongroom-bench"
PINS = ("cbor2<6", "pyopenssl==25.1.0", "cryptography>=45,<46", "service_identity")
CREDENTIALS = {"AccessKeyId": "test", "SecretAccessKey": "test", "Region": "us-east-1"}


class Unavailable(Exception):
    """LocalStack cannot be set up on this machine (the reason is the message)."""


def _minor_version(python: str) -> int | None:
    """Python 3's minor version of ``python``, or None if it does not run (a pyenv shim)."""
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    number = done.stdout.strip()
    return int(number) - 300 if done.returncode == 0 and number.isdigit() else None


def find_python(wanted: str | None = None) -> tuple[str, int]:
    """The newest CPython 3.12+ that runs here (or ``wanted``), and its minor version."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [wanted] if wanted else []
    if not wanted:
        candidates += [shutil.which(f"python3.{minor}") or "" for minor in range(20, 11, -1)]
        candidates += sorted(
            glob.glob(str(pyenv / "3.*" / "bin" / "python3")),
            key=lambda path: [int(p) for p in Path(path).parts[-3].split(".") if p.isdigit()],
            reverse=True,
        )
    for python in filter(None, candidates):
        minor = _minor_version(python)
        if minor is not None and minor >= 12:
            return python, minor
    raise Unavailable(
        "LocalStack needs Python 3.12 or newer; none runs here (on PATH or in pyenv; "
        "give one with --localstack-python)"
    )


def ensure_env(found: tuple[str, int], version: str | None) -> Path:
    """A virtualenv with ``localstack-core[runtime]`` (``version``, else the newest)."""
    python, minor = found
    venv = CACHE / f"localstack-{version or 'newest'}-py3.{minor}"
    interpreter = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and time.time() - marker.stat().st_mtime < 86_400:
        return interpreter
    print(f"setting up LocalStack in {venv} (once a day)", flush=True)
    if not interpreter.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    spec = "localstack-core[runtime]" + (f"=={version}" if version else "")
    done = subprocess.run(
        [str(interpreter), "-m", "pip", "install", "-q", "-U", spec, *PINS],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise Unavailable(f"pip could not install {spec}: {done.stderr.strip()[-400:]}")
    marker.touch()
    return interpreter


def installed_version(interpreter: Path) -> str:
    """The ``localstack-core`` release in that environment."""
    return subprocess.run(
        [str(interpreter), "-c", "import localstack.version as v; print(v.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-600:]
            raise Unavailable(f"LocalStack exited with status {process.returncode}: {tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_localstack/health")
            health = json.loads(conn.getresponse().read())
            conn.close()
            if health.get("services", {}).get("kms") in ("available", "running"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise Unavailable("LocalStack did not answer its health check within 120 s")


@contextlib.contextmanager
def localstack_target(base: Path, python: str | None, version: str | None) -> Iterator[Target]:
    """LocalStack's KMS alone, over HTTPS on a free loopback port."""
    interpreter = ensure_env(find_python(python), version)
    release = installed_version(interpreter)
    port = free_port()
    data = base / KEY
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SERVICES": "kms",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "CUSTOM_SSL_CERT_PATH": str(data / "server.pem"),
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_VOLUME_DIR": str(data / "volume"),
        "FILESYSTEM_ROOT": str(data / "root"),
        "TMPDIR": str(data),
    }
    log = data / "localstack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(interpreter), "-m", "localstack.runtime.main"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process, log)
        yield Target(
            KEY,
            f"LocalStack {release}, HTTPS",
            f"https://127.0.0.1:{port}",
            CREDENTIALS,
            None,
            process.pid,
            verify=False,
        )
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
