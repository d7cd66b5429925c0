"""``--endpoint``, ``--region``, ``--profile``, ``--ca-bundle``: which server, and how to reach it.

Many commands talk to a server through the standard AWS chain (credentials, region,
``AWS_CA_BUNDLE``): the data commands to any AWS KMS endpoint, the user-key and mesh
commands to a Strongroom server. :func:`endpoint_options` gives a command the four options
at once: the command declares one parameter ``endpoint: EndpointChoice`` and the decorator
shows typer the four options in its place, then hands the command what was given::

    @endpoint_options("A Strongroom server (https://HOST:PORT).")
    def count_command(key: KeyOption, endpoint: EndpointChoice = NO_ENDPOINT) -> None:
        keys = HttpUserKeys.connect(**endpoint.connect_kwargs())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import typer

from strongroom.cli.common import fail
from strongroom.cli.option_groups import Command, option_group

REGION_HELP = "Region to sign for (default: the AWS chain's)."
PROFILE_HELP = "Named AWS profile for the credentials."
CA_BUNDLE_HELP = "CA certificates to verify --endpoint with (default: $AWS_CA_BUNDLE)."


class ConnectArgs(TypedDict):
    """The keyword arguments of the HTTP clients' ``connect`` class methods."""

    endpoint_url: str | None
    region: str | None
    profile: str | None
    ca_bundle: str | None


@dataclass(frozen=True, slots=True)
class EndpointChoice:
    """What the options said: the endpoint URL (``None``: the chain's or the default)."""

    url: str | None = None
    region: str | None = None
    profile: str | None = None
    ca_bundle: str | None = None

    def require_url_for_the_rest(self) -> None:
        """Fail (exit 1) when --region, --profile or --ca-bundle come without --endpoint."""
        if self.url is None and (self.region or self.profile or self.ca_bundle):
            fail("--region, --ca-bundle and --profile go with --endpoint")

    def connect_kwargs(self) -> ConnectArgs:
        """``endpoint_url``, ``region``, ``profile``, ``ca_bundle`` for the clients' ``connect``."""
        return {
            "endpoint_url": self.url,
            "region": self.region,
            "profile": self.profile,
            "ca_bundle": self.ca_bundle,
        }


NO_ENDPOINT = EndpointChoice()
"""The default of a command's ``endpoint`` parameter (typer never sees it)."""


def _option(name: str, help_text: str) -> Any:
    return Annotated[str | None, typer.Option(name, help=help_text, show_default=False)]


def endpoint_options(
    url_help: str, *, profile_help: str = PROFILE_HELP, ca_bundle_help: str = CA_BUNDLE_HELP
) -> Callable[[Command], Command]:
    """Show typer four options in place of a command's ``endpoint: EndpointChoice``.

    ``--endpoint`` (help ``url_help``), ``--region``, ``--profile`` and ``--ca-bundle``
    come last in the command's options; the command gets them as one
    :class:`EndpointChoice`.
    """

    def build(
        endpoint_url: str | None, region: str | None, profile: str | None, ca_bundle: str | None
    ) -> EndpointChoice:
        return EndpointChoice(endpoint_url, region, profile, ca_bundle)

    return option_group(
        "endpoint",
        build,
        {
            "endpoint_url": _option("--endpoint", url_help),
            "region": _option("--region", REGION_HELP),
            "profile": _option("--profile", profile_help),
            "ca_bundle": _option("--ca-bundle", ca_bundle_help),
        },
    )
