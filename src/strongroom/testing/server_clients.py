"""Talk to a running test server: clients, the AWS environment, audit events, metrics.

:class:`ServerInfo` is what :func:`strongroom.testing.server.run_server` yields.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from strongroom.testing.console import run_cli


class ServerInfo(NamedTuple):
    """What a test needs to talk to a running server."""

    endpoint_url: str
    ca_bundle: Path | None
    credentials: dict[str, Any]


def client_for(
    info: ServerInfo,
    service: str = "kms",
    credentials: dict[str, Any] | None = None,
    region: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 client for ``service`` at the server, signed with ``credentials``.

    ``credentials`` default to the admin credentials; ``config`` goes to botocore's
    ``Config`` (retries are off unless given).
    """
    import boto3
    from botocore.config import Config

    creds = credentials if credentials is not None else info.credentials
    config.setdefault("retries", {"total_max_attempts": 1})
    return boto3.session.Session().client(
        service,
        endpoint_url=info.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        region_name=region or creds.get("Region") or "us-east-1",
        verify=str(info.ca_bundle) if info.ca_bundle is not None else True,
        config=Config(**config),
    )


def aws_env(credentials: dict[str, Any], folder: Path, **extra: str) -> dict[str, str]:
    """The environment of this process with only ``credentials`` for the AWS chain.

    Other ``AWS_*`` variables are dropped and the config files point into ``folder``
    (where none exist), so nothing of the machine's AWS setup leaks in; ``extra`` variables
    (``AWS_DEFAULT_REGION``, ``AWS_CA_BUNDLE``...) are added last.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_CONFIG_FILE=str(folder / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(folder / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    environ.update(extra)
    return environ


def signed_json_client(info: ServerInfo, credentials: dict[str, Any], target_prefix: str) -> Any:
    """A signed JSON client for one of the server's extension APIs.

    ``target_prefix`` is ``StrongroomMesh`` or ``StrongroomUserKeys``; requests are signed
    with ``credentials``.
    """
    from botocore.credentials import Credentials

    from strongroom.awsjson.client import SignedJsonClient

    return SignedJsonClient(
        info.endpoint_url,
        "us-east-1",
        Credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"]),
        target_prefix,
        verify=str(info.ca_bundle) if info.ca_bundle is not None else True,
    )


def audit_events(
    data_dir: Path, operations: set[str], wait_for: set[str], timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The audit events of ``operations`` (``strongroom admin audit show``).

    Waits until events of every operation in ``wait_for`` are there (the server flushes its
    queue within a second) or ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = run_cli(
            "admin", "audit", "show", "--limit", "100000", "--json", "--data-dir", str(data_dir)
        )
        events = [row["Event"] for row in json.loads(out[: out.rindex("}") + 1])["Events"]]
        found = [e for e in events if isinstance(e, dict) and e.get("operation") in operations]
        if {e["operation"] for e in found} >= wait_for or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def scrape_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET http://127.0.0.1:PORT/metrics``: every sample by (name, sorted label pairs)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def signed_kms_request(
    info: ServerInfo, operation: str, body: dict[str, Any]
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one signed ``TrentService.<operation>`` request.

    Signed with the admin credentials (:func:`strongroom.testing.http.sign_headers`), to
    replay on a connection of one's own.
    """
    import json

    from strongroom.testing.aws_clients import AwsCredentials, Endpoint
    from strongroom.testing.http import sign_headers

    data = json.dumps(body).encode()
    headers = sign_headers(
        Endpoint(info.endpoint_url, info.ca_bundle),
        AwsCredentials.from_json(info.credentials),
        info.credentials["Region"],
        data,
        target=f"TrentService.{operation}",
    )
    return headers, data
