"""``strongroom init``: create a data directory, its root key, its config and its store."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.context import (
    STORE_ENV,
    DataDirOption,
    JsonOption,
    cli_errors,
    data_dir_of,
    print_json,
    shown_root,
    shown_store_url,
    stdout_console,
    store_option,
)
from strongroom.config import (
    SQLITE_FILE,
    DataDirConfig,
    default_store_url,
    write_config,
)
from strongroom.deployment import open_service
from strongroom.errors import ValidationError
from strongroom.files import fsync_dir
from strongroom.ports import StoreTx
from strongroom.rootkey import MASTER_KEY_FILE
from strongroom.store import open_store


@dataclass(frozen=True, slots=True)
class InitResult:
    """What :func:`initialise` made."""

    data_dir: Path
    config_file: Path
    config: DataDirConfig
    master_key_file: Path | None
    created_dir: bool


def _store_is_empty(tx: StoreTx) -> bool:
    return not tx.tenants() and not tx.read_audit(0, 1)


def prepare_data_dir(data_dir: Path, allowed: frozenset[str] = frozenset()) -> bool:
    """Create ``data_dir`` (0700) or check that it holds nothing but ``allowed`` names.

    Return whether the directory was created. Refuses a data directory in use.
    """
    if data_dir.exists():
        if not data_dir.is_dir():
            raise ValidationError(f"{data_dir} exists and is not a directory")
        extra = sorted(p.name for p in data_dir.iterdir() if p.name not in allowed)
        if extra:
            raise ValidationError(
                f"{data_dir} is not empty (holds {', '.join(extra[:3])}"
                f"{', ...' if len(extra) > 3 else ''}): refusing to initialise it again"
            )
        os.chmod(data_dir, stat.S_IRWXU)
        return False
    data_dir.mkdir(mode=0o700, parents=True)
    os.chmod(data_dir, stat.S_IRWXU)  # mkdir's mode is filtered by the umask
    if data_dir.parent.exists():
        fsync_dir(data_dir.parent)
    return True


def initialise(
    data_dir: Path,
    root_spec: str = "local",
    store_url: str | None = None,
    *,
    reuse_root: bool = False,
) -> InitResult:
    """Create a data directory: root key (or HSM key), key store with migrations, config.

    The store must be empty. With ``reuse_root`` (a restore), the local master key file
    may already be in the directory and is used, never created; an HSM key must exist.
    On failure, whatever this call created is removed again.
    """
    data_dir = Path(os.path.abspath(data_dir))
    allowed = frozenset({MASTER_KEY_FILE}) if reuse_root else frozenset()
    created_dir = prepare_data_dir(data_dir, allowed)
    before = {p.name for p in data_dir.iterdir()}
    url = store_url or default_store_url(data_dir)
    try:
        store = open_store(url)
        try:
            if not store.read(_store_is_empty):
                raise ValidationError(
                    f"the key store {shown_store_url(url)} holds data already: "
                    "initialise a data directory only over an empty store"
                )
        finally:
            store.close()
        if store_url is None:  # the dir is 0700 already; keep the file owner-only too
            os.chmod(data_dir / SQLITE_FILE, stat.S_IRUSR | stat.S_IWUSR)
        config = DataDirConfig(store_url=url, root_of_trust=root_spec)
        # the same construction as every later command: the root key is made here
        open_service(config, data_dir, create_root=not reuse_root).close()
        config_file = write_config(data_dir, config)
    except BaseException:
        remove_new_entries(data_dir, before, created_dir)
        raise
    return InitResult(
        data_dir=data_dir,
        config_file=config_file,
        config=config,
        master_key_file=data_dir / MASTER_KEY_FILE if root_spec == "local" else None,
        created_dir=created_dir,
    )


def remove_new_entries(data_dir: Path, before: set[str], created_dir: bool) -> None:
    """Undo a failed initialisation: remove what it added (the directory, if it made it)."""
    if created_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for entry in data_dir.iterdir():
        if entry.name not in before:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def describe(result: InitResult) -> dict[str, str | None]:
    """The JSON shape of an :class:`InitResult` (no secrets)."""
    return {
        "DataDir": str(result.data_dir),
        "ConfigFile": str(result.config_file),
        "StoreUrl": shown_store_url(result.config.store_url),
        "RootOfTrust": shown_root(result.config.root_of_trust),
        "MasterKeyFile": None if result.master_key_file is None else str(result.master_key_file),
    }


RootOption = Annotated[
    str,
    typer.Option(
        "--root-of-trust",
        help="'local' (a master key file in the data directory, for development) or a "
        "PKCS#11 URI of an HSM key (created if missing).",
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Key store URL (default: sqlite:///<DATA_DIR>/strongroom.db; "
        "postgresql://user@host/db for PostgreSQL).",
        show_default=False,
    ),
]


def init_command(
    data_dir: DataDirOption = None,
    root_of_trust: RootOption = "local",
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Initialise a new data directory: root key, config.json and an empty key store."""
    with cli_errors():
        result = initialise(data_dir_of(data_dir), root_of_trust, store_option(store))
    info = describe(result)
    if json_output:
        print_json(info)
        return
    console = stdout_console()
    console.print(f"Initialised Strongroom data directory {info['DataDir']} (mode 0700)")
    if result.master_key_file is not None:
        console.print(f"  created master key   {result.master_key_file} (mode 0600)")
    else:
        console.print(f"  root of trust        {info['RootOfTrust']}")
    console.print(f"  key store            {info['StoreUrl']} (schema migrated)")
    console.print(f"  config               {info['ConfigFile']} (mode 0600)")
    if result.master_key_file is not None:
        console.print(
            "Back up master.key separately from the data: without it nothing decrypts.",
            style="yellow",
        )


def register(app: typer.Typer) -> None:
    """Add ``init`` to the top-level app."""
    app.command(
        "init",
        epilog="Examples:  strongroom init --data-dir /var/lib/strongroom   |   "
        "strongroom init --root-of-trust 'pkcs11:token=prod;object=root"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so' --store postgresql://kms@db/kms",
    )(init_command)
