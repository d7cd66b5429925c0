"""A throwaway SoftHSM 2 token for tests: its own config, token directory and PIN.

::

    with TempSoftHSM(tmp_path) as hsm:
        root = Pkcs11RootOfTrust.from_uri(hsm.uri("root"), create=True)

SoftHSM reads ``SOFTHSM2_CONF`` once, when the module is initialised, and python-pkcs11
keeps one initialised module per path for the whole process. So each ``TempSoftHSM``
loads a private copy of ``libsofthsm2.so`` (a separate library instance as far as the
dynamic loader is concerned) and initialises it while its own config is in force: two
instances, nested or one after the other, never see each other's tokens, and a session
fixture's token keeps working while a test runs its own. ``SOFTHSM2_CONF`` is set while
the block runs (for ``softhsm2-util`` and subprocesses) and restored on exit; the private
directory, with the token in it, is removed.

If the base directory is on a ``noexec`` mount the copy cannot be loaded; then the system
module is used and re-initialised with this config, which ends any other instance's
sessions in this process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pkcs11

from strongroom.errors import RootOfTrustError
from strongroom.rootkey.pkcs11_session import PROCESS_MODULES
from strongroom.rootkey.pkcs11_uri import Pkcs11Uri

MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib64/pkcs11/libsofthsm2.so"),
    Path("/usr/lib/pkcs11/libsofthsm2.so"),
)
"""Where distributions install the SoftHSM 2 PKCS#11 module."""

CONF_ENV = "SOFTHSM2_CONF"
"""The environment variable SoftHSM reads its config path from."""


def find_softhsm_module() -> Path:
    """Return the path of the installed ``libsofthsm2.so``."""
    for candidate in MODULE_CANDIDATES:
        if candidate.is_file():
            return candidate.resolve()
    raise RootOfTrustError("SoftHSM 2 is not installed (libsofthsm2.so not found)")


class TempSoftHSM:
    """A private, initialised SoftHSM 2 token living as long as its ``with`` block.

    ``pin`` is the user PIN (random unless given); :meth:`uri` names a key on the token
    in the form :class:`~strongroom.rootkey.Pkcs11RootOfTrust` takes.
    """

    def __init__(
        self,
        base_dir: Path,
        token_label: str = "strongroom",  # noqa: S107 - a label, not a password
        *,
        pin: str | None = None,
        util: str = "softhsm2-util",
    ) -> None:
        self.base_dir = Path(base_dir)
        self.token_label = token_label
        self.pin = pin if pin is not None else secrets.token_hex(8)
        self._so_pin = secrets.token_hex(8)
        self._util = util
        self._dir: Path | None = None
        self._module: Path | None = None
        self._lib: Any = None
        self._saved_conf: str | None = None

    def __repr__(self) -> str:
        return f"TempSoftHSM(token_label={self.token_label!r}, dir={self._dir})"

    @property
    def conf_path(self) -> Path:
        """The SoftHSM config file of this instance."""
        return self._private_dir / "softhsm2.conf"

    @property
    def token_dir(self) -> Path:
        """The directory holding this instance's token files."""
        return self._private_dir / "tokens"

    @property
    def module_path(self) -> Path:
        """The PKCS#11 module to load for this instance's token."""
        if self._module is None:
            raise RootOfTrustError("the SoftHSM instance is not running")
        return self._module

    def uri(self, object_label: str) -> str:
        """A ``pkcs11:`` URI naming the key ``object_label`` on this token, PIN included."""
        return Pkcs11Uri(
            token=self.token_label,
            object=object_label,
            module_path=str(self.module_path),
            pin_value=self.pin,
        ).to_text(include_pin=True)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """Yield a python-pkcs11 session logged in to this token, to inspect its objects.

        The login is the one this process's roots of trust share, so opening and closing
        this session never logs them out; the module's lock is held throughout.
        """
        module = PROCESS_MODULES.get(str(self.module_path))
        with module.lock:
            token = module.lib.get_token(token_label=self.token_label)
            login = module.login(token, self.pin)
            try:
                yield login.session
            finally:
                module.release(login)

    def __enter__(self) -> TempSoftHSM:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="softhsm-", dir=self.base_dir)).resolve()
        self.token_dir.mkdir(mode=0o700)
        self.conf_path.write_text(
            f"directories.tokendir = {self.token_dir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
            "slots.mechanisms = ALL\n",
            encoding="utf-8",
        )
        self._saved_conf = os.environ.get(CONF_ENV)
        os.environ[CONF_ENV] = str(self.conf_path)
        try:
            self._init_token()
            self._module, self._lib = self._load_module()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    @property
    def _private_dir(self) -> Path:
        if self._dir is None:
            raise RootOfTrustError("the SoftHSM instance is not running")
        return self._dir

    def _init_token(self) -> None:
        command = [
            self._util,
            "--init-token",
            "--free",
            "--label",
            self.token_label,
            "--so-pin",
            self._so_pin,
            "--pin",
            self.pin,
        ]
        try:
            result = subprocess.run(  # noqa: S603 - fixed program, no shell
                command, capture_output=True, text=True, check=False, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RootOfTrustError(f"cannot run {self._util}") from exc
        if result.returncode != 0:
            raise RootOfTrustError(
                f"{self._util} --init-token failed ({result.returncode}): "
                f"{result.stderr.strip()[:500]}"
            )

    def _load_module(self) -> tuple[Path, Any]:
        system = find_softhsm_module()
        private = self._private_dir / "libsofthsm2.so"
        shutil.copyfile(system, private)
        private.chmod(0o500)
        try:
            return private, pkcs11.lib(str(private))
        except pkcs11.PKCS11Error:
            # A noexec mount: share the system module and make it read this config.
            lib = pkcs11.lib(str(system))
            lib.reinitialize()
            return system, lib

    def _restore(self) -> None:
        if self._lib is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()
            self._lib = None
        if self._saved_conf is None:
            os.environ.pop(CONF_ENV, None)
        else:
            os.environ[CONF_ENV] = self._saved_conf
        self._saved_conf = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._module = None
