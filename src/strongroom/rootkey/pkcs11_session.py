"""Process-wide state of loaded PKCS#11 modules: one lock and one login per token.

PKCS#11 state is per process, not per object: python-pkcs11 initialises each module once
(with ``C_Initialize(NULL)``, which promises the module that no two threads call it at
the same time) and a token's login belongs to the whole process (a second ``C_Login``
fails, and ``C_Logout`` in any session logs every session out). So every root of trust
opened on a module shares that module's lock, and every one opened on a token shares one
logged-in session, counted: the last one to close logs out. This table mirrors state the
PKCS#11 library already holds per process; it is the one global of ``strongroom.rootkey``.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import threading
from typing import Any

import pkcs11
from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn

from strongroom.errors import RootOfTrustError


class TokenLogin:
    """A logged-in read-write session on one token, shared and reference-counted."""

    __slots__ = ("_pin", "key", "session", "users")

    def __init__(self, key: tuple[int, bytes], session: Any, pin: str) -> None:
        self.key = key
        self.session = session
        self._pin = pin.encode("utf-8")
        self.users = 1

    def __repr__(self) -> str:
        return f"TokenLogin(slot={self.key[0]}, users={self.users})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a PKCS#11 login cannot be pickled")

    def pin_matches(self, pin: str) -> bool:
        """Tell, in constant time, whether ``pin`` is the PIN this login was made with."""
        return hmac.compare_digest(self._pin, pin.encode("utf-8"))


class Pkcs11Module:
    """One loaded PKCS#11 module: the python-pkcs11 ``lib``, its lock and its logins.

    Hold :attr:`lock` around every call into the module (sessions, keys, tokens).
    """

    __slots__ = ("lib", "lock", "logins", "path")

    def __init__(self, path: str, lib: Any) -> None:
        self.path = path
        self.lib = lib
        self.lock = threading.RLock()
        self.logins: dict[tuple[int, bytes], TokenLogin] = {}

    def __repr__(self) -> str:
        return f"Pkcs11Module({self.path!r})"

    def login(self, token: Any, pin: str) -> TokenLogin:
        """Return this process's login on ``token``, logging in if it has none yet.

        The caller holds :attr:`lock` and must :meth:`release` the login when done.
        """
        key = (int(token.slot.slot_id), bytes(token.serial))
        existing = self.logins.get(key)
        if existing is not None:
            if not existing.pin_matches(pin):
                raise RootOfTrustError("the token is open in this process with another PIN")
            existing.users += 1
            return existing
        try:
            try:
                session = token.open(rw=True, user_pin=pin)
            except UserAlreadyLoggedIn:
                # Other code of this process logged in (the PIN cannot be checked then): use
                # that login through a session that does not log out when closed.
                session = token.open(rw=True)
        except PKCS11Error as exc:
            raise RootOfTrustError(
                f"cannot log in to the PKCS#11 token ({type(exc).__name__})"
            ) from exc
        login = TokenLogin(key, session, pin)
        self.logins[key] = login
        return login

    def release(self, login: TokenLogin) -> None:
        """Give back a login from :meth:`login`; the last user closes its session.

        The caller holds :attr:`lock`.
        """
        login.users -= 1
        if login.users > 0:
            return
        if self.logins.get(login.key) is login:
            del self.logins[login.key]
        # If the module was finalised or the token removed there is nothing left to close.
        with contextlib.suppress(PKCS11Error):
            login.session.close()


class Pkcs11Modules:
    """The loaded modules of this process, by real path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modules: dict[str, Pkcs11Module] = {}

    def __repr__(self) -> str:
        return f"Pkcs11Modules({sorted(self._modules)!r})"

    def get(self, module_path: str) -> Pkcs11Module:
        """Load (once) and initialise (if needed) the module at ``module_path``."""
        real = os.path.realpath(module_path)
        if not os.path.isfile(real):
            raise RootOfTrustError(f"PKCS#11 module {module_path} does not exist")
        with self._lock:
            module = self._modules.get(real)
            stale = module is not None and not module.lib.initialized
            try:
                lib = pkcs11.lib(real)  # python-pkcs11's cache; re-initialises if finalised
            except PKCS11Error as exc:
                message = f"cannot load the PKCS#11 module {module_path}"
                conf = os.environ.get("SOFTHSM2_CONF")
                if "softhsm" in module_path.lower() and conf is not None:
                    if not os.path.isfile(conf):
                        message += f": SOFTHSM2_CONF names {conf!r}, which is no file"
                    else:
                        message += f" (check its configuration {conf}, SOFTHSM2_CONF)"
                raise RootOfTrustError(message) from exc
            if module is None or stale or module.lib is not lib:
                module = Pkcs11Module(real, lib)
                self._modules[real] = module
            return module


PROCESS_MODULES = Pkcs11Modules()
"""The table every :class:`~strongroom.rootkey.Pkcs11RootOfTrust` uses unless given another."""
