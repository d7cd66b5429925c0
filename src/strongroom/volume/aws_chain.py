"""The static part of the AWS chain, read without botocore: keys, region, endpoint, CA.

Why: unlocking a volume is one ``Decrypt`` call, but importing boto3 and building a KMS
client costs about half a second here (the service model is loaded), five times the
latency budget of ``strongroom volume pass``. So the volume commands and the Clevis pin
read the common, static settings themselves, in botocore's order:

- credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``)
  unless a profile is named explicitly (``--profile``), then the profile's keys in
  ``AWS_SHARED_CREDENTIALS_FILE`` (``~/.aws/credentials``), then in ``AWS_CONFIG_FILE``
  (``~/.aws/config``); the profile is ``--profile``, ``AWS_PROFILE``,
  ``AWS_DEFAULT_PROFILE`` or ``default``;
- region: ``--region``, ``AWS_DEFAULT_REGION``, the profile's ``region``, else the
  region of the key ARN being used;
- endpoint: ``--endpoint``, ``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the profile's
  ``endpoint_url``, else ``https://kms.<region>.amazonaws.com``;
- CA bundle: ``--ca-bundle``, ``AWS_CA_BUNDLE``, the profile's ``ca_bundle``.

Whenever the chain holds anything else (a role to assume, ``credential_process``, SSO,
web identity, container or instance credentials, FIPS or dual-stack endpoints, a
``services`` section), :func:`static_settings` returns ``None`` and the caller uses
botocore, which knows all of it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    import configparser

DYNAMIC_PROFILE_KEYS = frozenset(
    {
        "role_arn",
        "source_profile",
        "credential_source",
        "credential_process",
        "web_identity_token_file",
        "sso_session",
        "sso_start_url",
        "sso_account_id",
        "sso_role_name",
        "login_session",
        "services",
        "use_fips_endpoint",
        "use_dualstack_endpoint",
    }
)
"""Profile settings only botocore resolves: their presence sends the caller to botocore."""
DYNAMIC_ENV = (
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


class StaticSettings:
    """Resolved settings: keys (never shown), region (may be empty), endpoint, CA bundle."""

    __slots__ = (
        "access_key_id",
        "ca_bundle",
        "endpoint_url",
        "region",
        "secret_access_key",
        "session_token",
    )

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        region: str,
        endpoint_url: str | None,
        ca_bundle: str | None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.region = region
        self.endpoint_url = endpoint_url
        self.ca_bundle = ca_bundle

    def _fields(self) -> tuple[str | None, ...]:
        return (
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.region,
            self.endpoint_url,
            self.ca_bundle,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StaticSettings):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"StaticSettings(access_key_id={self.access_key_id!r}, region={self.region!r}, "
            f"endpoint_url={self.endpoint_url!r}, ca_bundle={self.ca_bundle!r})"
        )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("credentials cannot be pickled")

    def url_for(self, region: str) -> str:
        """The endpoint URL: the one configured, else AWS KMS in ``region``."""
        if self.endpoint_url:
            return self.endpoint_url
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://kms.{region}.{suffix}"


def _read_ini(path: str) -> configparser.RawConfigParser | None:
    if not os.path.isfile(path):
        return None  # configparser is only imported when there is a file to read
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser


def _section(parser: configparser.RawConfigParser | None, name: str) -> dict[str, str]:
    if parser is not None and parser.has_section(name):
        return {k.lower(): v.strip() for k, v in parser.items(name)}
    return {}


def _home_file(env: dict[str, str], variable: str, default: str) -> str:
    return os.path.expanduser(env.get(variable) or f"~/.aws/{default}")


def static_settings(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    ca_bundle: str | None = None,
    environ: dict[str, str] | None = None,
) -> StaticSettings | None:
    """The chain's settings if they are static (see the module docstring), else ``None``."""
    env = dict(os.environ if environ is None else environ)
    if any(env.get(name) for name in DYNAMIC_ENV):
        return None
    name = profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    config = _read_ini(_home_file(env, "AWS_CONFIG_FILE", "config"))
    settings = _section(config, "default" if name == "default" else f"profile {name}")
    if name == "default" and not settings:
        settings = _section(config, "profile default")
    if DYNAMIC_PROFILE_KEYS & set(settings):
        return None
    shared = _section(
        _read_ini(_home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")), name
    )
    if DYNAMIC_PROFILE_KEYS & set(shared):
        return None
    keys: tuple[str, str, str | None] | None = None
    if profile is None and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
        keys = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], token)
    else:
        for source in (shared, settings):
            if source.get("aws_access_key_id") and source.get("aws_secret_access_key"):
                token = source.get("aws_session_token") or None
                keys = (source["aws_access_key_id"], source["aws_secret_access_key"], token)
                break
    if keys is None:
        return None
    ignore_endpoints = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
    endpoint = endpoint_url
    if endpoint is None and not ignore_endpoints:
        endpoint = (
            env.get("AWS_ENDPOINT_URL_KMS")
            or env.get("AWS_ENDPOINT_URL")
            or settings.get("endpoint_url")
            or None
        )
    return StaticSettings(
        access_key_id=keys[0],
        secret_access_key=keys[1],
        session_token=keys[2],
        region=region or env.get("AWS_DEFAULT_REGION") or settings.get("region") or "",
        endpoint_url=endpoint,
        ca_bundle=ca_bundle or env.get("AWS_CA_BUNDLE") or settings.get("ca_bundle") or None,
    )
