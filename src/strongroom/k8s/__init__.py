"""Kubernetes KMS v2 plugin: kube-apiserver's DEK seeds encrypted under a Strongroom key.

kube-apiserver talks gRPC over a unix socket (the official ``k8s.io/kms``
``apis/v2/api.proto``, kept in :mod:`strongroom.k8s.proto`). The parts:

- :class:`KmsPlugin`: Status, Encrypt and Decrypt over a :class:`KeyBackend`, with the
  health cache, the ``key_id`` that follows key rotations, and retries.
- :class:`InProcessBackend` (a key service in this process) and :class:`AwsKmsBackend`
  (the AWS KMS API over HTTPS: a Strongroom server or AWS KMS).
- :class:`KmsServicer` and :class:`PluginServer`: the gRPC service on the socket.
- :class:`PluginMetrics`, :class:`MetricsEndpoint`, :func:`configure_logging`.

The command line is ``strongroom k8s-plugin`` (:mod:`strongroom.cli.k8s`); operators'
documentation in ``docs/kubernetes.md``.
"""

from strongroom.k8s.backend import (
    InProcessBackend,
    KeyBackend,
    KeyVersion,
    Sealed,
    plugin_caller,
)
from strongroom.k8s.backend_http import AwsKmsBackend
from strongroom.k8s.housekeeping import Housekeeping
from strongroom.k8s.logs import configure_logging
from strongroom.k8s.metrics import PluginMetrics
from strongroom.k8s.plugin import (
    API_VERSION,
    ENCRYPTION_CONTEXT,
    FORMAT_ANNOTATION,
    Encrypted,
    KmsPlugin,
    PluginStatus,
    format_key_id,
    parse_key_id,
)
from strongroom.k8s.retry import RetryPolicy
from strongroom.k8s.server import KmsServicer, PluginServer, parse_listen, settle_for_serving
from strongroom.logs import JsonLogFormatter
from strongroom.metrics import MetricsEndpoint

__all__ = [
    "API_VERSION",
    "ENCRYPTION_CONTEXT",
    "FORMAT_ANNOTATION",
    "AwsKmsBackend",
    "Encrypted",
    "Housekeeping",
    "InProcessBackend",
    "JsonLogFormatter",
    "KeyBackend",
    "KeyVersion",
    "KmsPlugin",
    "KmsServicer",
    "MetricsEndpoint",
    "PluginMetrics",
    "PluginServer",
    "PluginStatus",
    "RetryPolicy",
    "Sealed",
    "configure_logging",
    "format_key_id",
    "parse_key_id",
    "parse_listen",
    "plugin_caller",
    "settle_for_serving",
]
