"""``strongroom encrypt`` and ``decrypt`` without typer: their fast start.

Importing typer costs about as much as all the rest of an ``encrypt`` of a small file
(``bench/cli_start.py``). :func:`strongroom.cli.main.main` hands ``encrypt ARGS`` to
:func:`run_encrypt` (``decrypt ARGS`` to :func:`run_decrypt`) first; it reads the same
options as the typer command (:mod:`strongroom.cli.fast_args`) and calls the same
:func:`~strongroom.cli.data_io.encrypt_files` / ``decrypt_files``, printing failures as
:func:`~strongroom.cli.common.cli_errors` does (:mod:`strongroom.cli.failure`). Help,
unknown options and anything unusual return ``None``: the typer command runs instead.
"""

from __future__ import annotations

from strongroom.cli.fast_args import ENDPOINT_OPTIONS, integer, parse_args

TYPE_CHECKING = False  # not typing's: this module is the fast start
if TYPE_CHECKING:
    from collections.abc import Callable

    from strongroom.cli.endpoint import ConnectArgs

ENCRYPT_OPTIONS = {
    "--key": "--key",
    "-k": "--key",
    "--context": "--context",
    "-c": "--context",
    "--chunk-size": "--chunk-size",
    **ENDPOINT_OPTIONS,
}
"""The options of ``strongroom encrypt`` (see :func:`strongroom.cli.data.encrypt_command`)."""
DECRYPT_OPTIONS = {"--context": "--context", "-c": "--context", **ENDPOINT_OPTIONS}
"""The options of ``strongroom decrypt``."""
REPEATABLE = ("--context",)


def _connect_args(options: dict[str, list[str]]) -> ConnectArgs:
    def one(name: str) -> str | None:
        return options[name][0] if name in options else None

    return {
        "endpoint_url": one("--endpoint"),
        "region": one("--region"),
        "profile": one("--profile"),
        "ca_bundle": one("--ca-bundle"),
    }


def _run(work: Callable[..., None], *args: object) -> int:
    """Call ``work(*args)``: 0, or the exit status of its failure as typer's command gives."""
    from strongroom.errors import StrongroomError

    try:
        work(*args)
    except (StrongroomError, OSError) as exc:
        from strongroom.cli.failure import report

        return report(exc)
    except KeyboardInterrupt:
        return 130  # as typer: Ctrl-C ends the command with 130, quietly
    return 0


def run_encrypt(args: list[str]) -> int | None:
    """Run ``encrypt ARGS``; ``None`` when the typer command should run instead."""
    options = parse_args(args, ("source", "dest"), ENCRYPT_OPTIONS, repeatable=REPEATABLE)
    if options is None or "--key" not in options:
        return None
    from strongroom.crypto.stream import DEFAULT_CHUNK_SIZE

    chunk_size = DEFAULT_CHUNK_SIZE
    if "--chunk-size" in options:
        given = integer(options["--chunk-size"][0])
        if given is None:
            return None
        chunk_size = given
    from strongroom.cli.data_io import encrypt_files

    return _run(
        encrypt_files,
        options["source"][0],
        options["dest"][0],
        options["--key"][0],
        options.get("--context"),
        chunk_size,
        _connect_args(options),
    )


def run_decrypt(args: list[str]) -> int | None:
    """Run ``decrypt ARGS``; ``None`` when the typer command should run instead."""
    options = parse_args(args, ("source", "dest"), DECRYPT_OPTIONS, repeatable=REPEATABLE)
    if options is None:
        return None
    from strongroom.cli.data_io import decrypt_files

    return _run(
        decrypt_files,
        options["source"][0],
        options["dest"][0],
        options.get("--context"),
        _connect_args(options),
    )
