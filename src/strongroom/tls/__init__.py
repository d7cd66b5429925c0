"""TLS for the server: the instance CA and the server certificate it issues.

The CA's and the server's private keys live only in the key store, wrapped by the root of
trust; the CA certificate is the bundle clients trust (``DATA_DIR/ca.pem``).
"""

from strongroom.tls.ca import InstanceCa, load_or_create_ca, read_ca_certificate
from strongroom.tls.server_cert import (
    SERVER_VALIDITY_DAYS,
    ServerCredentials,
    SubjectNames,
    file_ssl_context,
    load_credentials,
    renewal_due,
    server_credentials,
    server_ssl_context,
)

__all__ = [
    "SERVER_VALIDITY_DAYS",
    "InstanceCa",
    "ServerCredentials",
    "SubjectNames",
    "file_ssl_context",
    "load_credentials",
    "load_or_create_ca",
    "read_ca_certificate",
    "renewal_due",
    "server_credentials",
    "server_ssl_context",
]
