"""``strongroom k8s-plugin``: the Kubernetes KMS v2 plugin on a unix socket.

Serves kube-apiserver's ``v2.KeyManagementService`` (see ``docs/kubernetes.md``) with a
KMS key of a Strongroom key service in this process (``--data-dir``, acting for
``--tenant``) or of a key service over HTTPS (``--endpoint``: a Strongroom server or AWS
KMS, credentials from the AWS credential chain). Logs are JSON lines on stderr. SIGTERM or
SIGINT stops it gracefully: calls in flight finish, the socket file is removed.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.context import (
    DataDirOption,
    MetricsPortOption,
    cli_errors,
    data_dir_of,
    fail,
    open_service,
)
from strongroom.errors import ValidationError

if TYPE_CHECKING:  # imported when the command runs: grpc costs every other command 0.1 s
    from strongroom.k8s import Housekeeping, KeyBackend

_LOG_LEVELS = ("debug", "info", "warning", "error")


def _arn_parts(key: str) -> tuple[str, str] | None:
    """``(region, account)`` of a key or alias ARN, else ``None``."""
    parts = key.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "kms":
        return parts[3], parts[4]
    return None


def _in_process(
    data_dir: Path | None, tenant: str | None, key: str, region: str | None
) -> tuple[KeyBackend, Housekeeping]:
    from strongroom.k8s import Housekeeping, InProcessBackend, plugin_caller

    arn = _arn_parts(key)
    if tenant is not None:
        who = tenant
    elif arn is not None:
        who = arn[1]
    else:
        raise ValidationError("--tenant is required with --data-dir (or give --key as an ARN)")
    service = open_service(data_dir_of(data_dir))
    try:
        caller = plugin_caller(service, who, region or (arn[0] if arn else "us-east-1"))
    except BaseException:
        service.close()
        raise
    housekeeping = Housekeeping(service)
    return InProcessBackend(service, caller, owns_service=True), housekeeping


def k8s_plugin_command(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="Unix socket to serve on, e.g. unix:///var/run/kmsplugin/kms.sock "
            "(created mode 0600; its directory 0700 if missing).",
            show_default=False,
        ),
    ],
    key: Annotated[
        str,
        typer.Option(
            "--key", help="KMS key to encrypt under: alias/NAME, key id or ARN.", show_default=False
        ),
    ],
    data_dir: DataDirOption = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="With the in-process key service: the tenant (name or account id) whose "
            "key it is (default: the account of an ARN --key).",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Use the key service at this URL (a Strongroom server or AWS KMS) instead "
            "of the data directory; credentials from the AWS credential chain.",
            show_default=False,
        ),
    ] = None,
    aws: Annotated[
        bool, typer.Option("--aws", help="Use AWS KMS itself (the region's endpoint).")
    ] = False,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Region (default: the ARN's, the AWS configuration's, then us-east-1).",
            show_default=False,
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="PEM CA bundle to verify --endpoint with (default: $AWS_CA_BUNDLE).",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile for --endpoint credentials.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.05, help="Seconds per HTTP attempt to the key service."),
    ] = 2.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries", min=0, max=10, help="Retries of a transient key service failure."
        ),
    ] = 2,
    health_ttl: Annotated[
        float,
        typer.Option("--health-ttl", min=0.0, help="Seconds a Status answer is reused."),
    ] = 5.0,
    metrics_port: MetricsPortOption = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="gRPC threads.")] = 16,
    grace: Annotated[
        float, typer.Option("--grace", min=0.0, help="Seconds calls in flight get at shutdown.")
    ] = 5.0,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Serve the Kubernetes KMS v2 plugin API for kube-apiserver on a unix socket.

    kube-apiserver's DEK seeds are encrypted under --key with the encryption context
    {"k8s-kms-plugin": "v2"}; Status reports key_id KEY_ARN#vN, which changes when the key
    is rotated. The key service runs in this process (--data-dir, as --tenant) or is
    reached over HTTPS (--endpoint). See docs/kubernetes.md.
    """
    if log_level.lower() not in _LOG_LEVELS:
        fail("--log-level must be debug, info, warning or error")
    if endpoint is not None and aws:
        fail("--endpoint and --aws exclude each other")
    remote = endpoint is not None or aws
    if remote and (data_dir is not None or tenant is not None):
        fail("--data-dir and --tenant are for the in-process key service: drop them or --endpoint")
    if not remote and (ca_bundle is not None or profile is not None):
        fail("--ca-bundle and --profile go with --endpoint or --aws")
    from prometheus_client import CollectorRegistry

    from strongroom.k8s import (
        AwsKmsBackend,
        KmsPlugin,
        KmsServicer,
        MetricsEndpoint,
        PluginMetrics,
        PluginServer,
        RetryPolicy,
        configure_logging,
        parse_listen,
        settle_for_serving,
    )

    registry = CollectorRegistry()
    metrics = PluginMetrics(registry)
    housekeeping: Housekeeping | None = None
    with cli_errors():
        socket_path = parse_listen(listen)
        if remote:
            arn = _arn_parts(key)
            backend: KeyBackend = AwsKmsBackend.connect(
                endpoint,
                region=region or (arn[0] if arn else None),
                ca_bundle=ca_bundle,
                profile=profile,
                timeout=timeout,
                max_connections=workers,
            )
        else:
            backend, housekeeping = _in_process(data_dir, tenant, key, region)
    configure_logging(log_level)
    plugin = KmsPlugin(
        backend,
        key,
        health_ttl=health_ttl,
        retry=RetryPolicy(attempts=retries + 1),
        metrics=metrics,
    )
    server = PluginServer(KmsServicer(plugin, metrics), socket_path, workers=workers)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    exposition: MetricsEndpoint | None = None
    try:
        with cli_errors():
            if housekeeping is not None:
                housekeeping.start()
            server.start()
            if metrics_port:
                exposition = MetricsEndpoint(registry, metrics_port)
        plugin.status()  # logs the first health state and key id
        settle_for_serving()
        while not stop.wait(3600):
            pass
    finally:
        server.stop(grace)
        if exposition is not None:
            exposition.close()
        if housekeeping is not None:
            housekeeping.stop()
        plugin.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def register(app: typer.Typer) -> None:
    """Add ``k8s-plugin`` to the top-level app."""
    app.command(
        "k8s-plugin",
        epilog="Examples:  strongroom k8s-plugin --listen unix:///var/run/kmsplugin/kms.sock "
        "--key alias/k8s-secrets --data-dir /var/lib/strongroom --tenant cluster-a   |   "
        "strongroom k8s-plugin --listen unix:///var/run/kmsplugin/kms.sock --key "
        "alias/k8s-secrets --endpoint https://kms.internal:8443 --ca-bundle /etc/strongroom/"
        "ca.pem",
    )(k8s_plugin_command)
