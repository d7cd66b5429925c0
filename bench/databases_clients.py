"""The databases' own clients in ``bench/databases.py``: libmongocrypt and MariaDB.

- libmongocrypt (pymongocrypt, which bundles it) creates data keys against a KMIP server
  (its default flow: ``Register`` of a 96-byte SecretData, ``Activate``, ``Get``) and
  round-trips one field with an empty data-key cache (``Get`` to encrypt, ``Get`` again
  to decrypt). Its KMS requests go through :class:`Driver`, which does what pymongo's
  ``kms_request`` does: a new TLS connection (no session resumption, no Nagle) per request.
- MariaDB from Debian: one ``mariadbd`` with InnoDB encryption (tables, redo log,
  temporary tables; keys from Strongroom's Vault API through the ``hashicorp_key_management``
  plugin over HTTPS) and one without, the same inserts into each, rounds alternated.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kmip_servers import KmipTarget
from pymongocrypt.synchronous.state_machine import MongoCryptCallback

ALGORITHM = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"


class Driver(MongoCryptCallback):  # type: ignore[misc]
    """The driver side of libmongocrypt: KMS requests over TLS, an in-memory key vault."""

    def __init__(self, target: KmipTarget) -> None:
        from bson.binary import STANDARD
        from bson.codec_options import CodecOptions

        self.options = CodecOptions(uuid_representation=STANDARD)
        self.keys: list[dict[str, Any]] = []
        self.context = ssl.create_default_context(cafile=target.ca)
        self.context.load_cert_chain(target.cert, target.key)

    def collection_info(self, database: str, filter: bytes) -> None:
        """Not used by explicit encryption."""
        raise NotImplementedError

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        """Not used by explicit encryption."""
        raise NotImplementedError

    def kms_request(self, kms_context: Any) -> None:
        """One KMS request on a new connection, as pymongo does."""
        host, _, port = kms_context.endpoint.partition(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.context.wrap_socket(raw, server_hostname=host) as sock:
                sock.sendall(kms_context.message)
                while kms_context.bytes_needed > 0:
                    data = sock.recv(kms_context.bytes_needed)
                    if not data:
                        raise ConnectionError("the KMIP server closed the connection")
                    kms_context.feed(data)

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        """The key vault documents the filter names."""
        import bson

        wanted = bson.decode(filter, codec_options=self.options)
        ids: set[Any] = set()
        for clause in wanted.get("$or", [wanted]):
            ids |= set(clause.get("_id", {}).get("$in", []))
        for key in self.keys:
            if key["_id"] in ids:
                yield bson.encode(key, codec_options=self.options)

    def insert_data_key(self, data_key: bytes) -> Any:
        """Keep a new data key document."""
        import bson

        doc = bson.decode(data_key, codec_options=self.options)
        self.keys.append(doc)
        return doc["_id"]

    def bson_encode(self, doc: Any) -> bytes:
        """BSON of ``doc``."""
        import bson

        return bson.encode(doc, codec_options=self.options)

    def close(self) -> None:
        """Nothing to release."""


def mongocrypt_round(target: KmipTarget, driver: Driver) -> tuple[float, float]:
    """Seconds for one data key creation and one field round trip (empty key cache)."""
    import bson
    from bson.binary import Binary
    from pymongocrypt.options import MongoCryptOptions
    from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter

    def encrypter() -> Any:
        options = MongoCryptOptions(
            {"kmip": {"endpoint": f"localhost:{target.port}"}}, key_expiration_ms=1
        )
        return ExplicitEncrypter(driver, options)

    enc = encrypter()
    start = time.perf_counter()
    key_id = enc.create_data_key("kmip")
    created = time.perf_counter() - start
    enc.close()
    enc = encrypter()
    start = time.perf_counter()
    sealed = enc.encrypt(bson.encode({"v": "4111"}), ALGORITHM, key_id=Binary.from_uuid(key_id))
    opened = bson.decode(enc.decrypt(sealed))
    trip = time.perf_counter() - start
    enc.close()
    if opened["v"] != "4111":
        raise SystemExit("libmongocrypt did not get the field back")
    return created, trip


# -- MariaDB ---------------------------------------------------------------------------------


DOCUMENTED = {
    "hashicorp-key-management-cache-timeout": "60000",
    "hashicorp-key-management-cache-version-timeout": "60000",
    "innodb_encryption_threads": "4",
}
"""The settings docs/mariadb.md gives (the test server's are short, to see rotations)."""


def _documented(db: Any) -> None:
    """Rewrite ``db``'s my.cnf with the documented settings, on every (re)write."""
    write = db.write_config

    def write_documented() -> None:
        write()
        lines = []
        for line in db.config.read_text().splitlines():
            name = line.split("=", 1)[0]
            lines.append(f"{name}={DOCUMENTED[name]}" if name in DOCUMENTED else line)
        db.config.write_text("\n".join(lines) + "\n")

    db.write_config = write_documented


class MariaPair:
    """Two ``mariadbd``: InnoDB encryption with keys from Strongroom, and none."""

    def __init__(self, base: Path) -> None:
        from strongroom.testing import mariadb
        from strongroom.testing.vault import vault_server

        (base / "vault").mkdir(parents=True, exist_ok=True)
        self.vault_cm = vault_server(base / "vault")
        vault = self.vault_cm.__enter__()
        vault.front.kv_write(vault.tenant, vault.caller, vault.mount, "1", {"data": "11" * 32})
        self.on = mariadb.TempMariaDB(
            base / "maria-on", f"{vault.url}/v1/{vault.mount}", vault.token, vault.ca
        )
        self.off = mariadb.TempMariaDB(
            base / "maria-off", vault.url, vault.token, vault.ca, encrypt=False
        )
        _documented(self.on)
        for db in (self.on, self.off):
            db.directory.mkdir(parents=True, exist_ok=True)
            db.install()
            if not db.start():
                raise SystemExit(f"mariadbd did not start: {db.error_log()[-2000:]}")
            db.sql("CREATE DATABASE bench")
            db.sql(
                "CREATE TABLE bench.t (id INT AUTO_INCREMENT PRIMARY KEY, "
                "v VARCHAR(200), n INT, KEY (n))"
            )
        check = (
            "SELECT COUNT(*) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION "
            "WHERE NAME='bench/t' AND CURRENT_KEY_ID=1"
        )
        if self.on.sql(check).stdout.strip() != "1" or self.off.sql(check).stdout.strip() != "0":
            raise SystemExit("InnoDB encryption is not on (only) in the encrypted server")

    def inserts(self, db: Any, rows: int, per_txn: int) -> tuple[float, float]:
        """Seconds for ``rows`` single-row INSERTs, ``per_txn`` per COMMIT, one client, and
        the CPU seconds ``mariadbd`` used meanwhile."""
        from kms_api_servers import process_sched

        from strongroom.testing import mariadb

        statements = ["SET autocommit=0;"]
        for i in range(rows):
            statements.append(f"INSERT INTO bench.t (v, n) VALUES ('{'x' * 150}-{i}', {i});")
            if (i + 1) % per_txn == 0:
                statements.append("COMMIT;")
        statements.append("COMMIT;")
        script = "\n".join(statements).encode()
        command = [mariadb.CLIENT, "--no-defaults", f"--socket={db.socket}", "-uroot", "bench"]
        before = process_sched([db.process.pid])[0]
        start = time.perf_counter()
        subprocess.run(command, input=script, check=True, capture_output=True, timeout=600)
        seconds = time.perf_counter() - start
        cpu, _ = process_sched([db.process.pid])[0].since(before)
        return seconds, cpu

    def close(self) -> None:
        """Stop both servers and the Vault API."""
        for db in (self.on, self.off):
            db.stop()
        self.vault_cm.__exit__(None, None, None)
