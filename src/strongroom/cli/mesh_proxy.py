"""``strongroom mesh proxy`` and ``strongroom mesh egress``: the sidecar and egress proxies.

Both read a YAML file (``--config``), log JSON lines on stderr (the first ones,
``"message": "listening"``, give each bound address) and run until SIGTERM or SIGINT.
See ``docs/mesh.md``, "Sidecar and egress", for the file formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import MetricsPortOption, cli_errors, fail
from strongroom.cli.mesh import LOG_LEVELS

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="The YAML configuration file.", show_default=False),
]
LogLevelOption = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
CheckOption = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Check the configuration (and for the sidecar its SVID) and exit: 0 when it "
        "would start, 1 with the reason when not.",
    ),
]


def proxy_command(
    config: ConfigOption,
    log_level: LogLevelOption = "info",
    metrics_port: MetricsPortOption = 0,
    check: CheckOption = False,
) -> None:
    """Run the mTLS sidecar: inbound mTLS termination, outbound mTLS origination.

    Example: strongroom mesh proxy --config /etc/strongroom/sidecar.yaml --metrics-port 9901
    """
    if log_level not in LOG_LEVELS:
        fail(f"--log-level is one of {', '.join(LOG_LEVELS)}")
    from strongroom.mesh.proxy.policy import load_policy
    from strongroom.mesh.proxy.run import check_proxy, configure_logging, run_proxy

    with cli_errors():
        policy = load_policy(config)
        if check:
            _report(config, check_proxy(policy))
            return
        configure_logging(log_level)
        run_proxy(policy, metrics_port=metrics_port)


def egress_command(
    config: ConfigOption,
    log_level: LogLevelOption = "info",
    metrics_port: MetricsPortOption = 0,
    check: CheckOption = False,
) -> None:
    """Run the egress proxy: CONNECT to allowed hosts, only TLS to verified servers.

    Example: strongroom mesh egress --config /etc/strongroom/egress.yaml
    """
    if log_level not in LOG_LEVELS:
        fail(f"--log-level is one of {', '.join(LOG_LEVELS)}")
    from strongroom.mesh.proxy.policy_egress import load_egress_config
    from strongroom.mesh.proxy.run import check_egress, configure_logging, run_egress

    with cli_errors():
        egress = load_egress_config(config)
        if check:
            _report(config, check_egress(egress))
            return
        configure_logging(log_level)
        run_egress(egress, metrics_port=metrics_port)


def _report(config: Path, lines: list[str]) -> None:
    typer.echo(f"{config}: OK")
    for line in lines:
        typer.echo(f"  {line}")


def register_mesh(mesh: typer.Typer) -> None:
    """Add ``proxy`` and ``egress`` to the ``strongroom mesh`` sub-app."""
    mesh.command(
        "proxy",
        epilog="Examples:  strongroom mesh proxy --config /etc/strongroom/sidecar.yaml "
        "--metrics-port 9901   |   strongroom mesh proxy --config sidecar.yaml --check   "
        "(policy format: docs/mesh.md, 'Sidecar policy')",
    )(proxy_command)
    mesh.command(
        "egress",
        epilog="Example:  strongroom mesh egress --config /etc/strongroom/egress.yaml   "
        "(then HTTPS_PROXY=http://127.0.0.1:PORT in the workload; docs/mesh.md, 'Egress')",
    )(egress_command)
