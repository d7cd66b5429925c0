"""Wiring the Vault front-end to a key service in this process, and serving it."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from strongroom.data.keys import InProcessDataKeys
from strongroom.kms.caller import Caller
from strongroom.ports import Clock, RootOfTrust, Store
from strongroom.tls.server_cert import (
    ServerCredentials,
    SubjectNames,
    server_credentials,
    server_ssl_context,
)
from strongroom.vault.http import VaultHttpServer
from strongroom.vault.service import VaultFrontEnd

if TYPE_CHECKING:
    from strongroom.kms import KeyService


def build_front_end(
    service: KeyService, store: Store, root: RootOfTrust, clock: Clock
) -> VaultFrontEnd:
    """The Vault front-end over ``service``: ``KeyService.call`` and ``KeyService.audit``."""

    def keys_for(caller: Caller) -> InProcessDataKeys:
        return InProcessDataKeys(service, caller)

    return VaultFrontEnd(store, root, service, keys_for, service.audit, clock)


def https_server(
    front: VaultFrontEnd,
    host: str,
    port: int,
    names: list[str] | None = None,
    max_connections: int = 256,
) -> tuple[VaultHttpServer, ServerCredentials]:
    """An HTTPS server with a certificate from the instance CA (``ca_pem`` is the bundle)."""
    subject = SubjectNames.build([host, *(names or [])])
    credentials = front.store.write(
        lambda tx: server_credentials(tx, front.root, subject, front.clock.now())
    )
    context: ssl.SSLContext = server_ssl_context(credentials)
    context.set_alpn_protocols(["http/1.1"])
    return VaultHttpServer(front, (host, port), context, max_connections), credentials
