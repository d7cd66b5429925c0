"""``strongroom backup create`` without typer, rich or botocore: the fast start.

An incremental backup of unchanged files does little work, so building the full command
line (typer, click, the command modules) would be a large part of it; it is compared with
``borg create`` (``bench/backup.py``). :func:`strongroom.cli.main.main` hands ``backup
create ...`` to :func:`run_create` first. It runs the common case itself: a local
repository, paths (not stdin), the KMS named by the environment (endpoint, region, static
keys: :func:`~strongroom.data.kms_direct.direct_from_environment`), no terminal on stderr
(where the typer command draws its progress bar), and only the options ``--repo/-r``,
``--exclude/-e``, ``--tag``, ``--host/-H``, ``--threads``, ``--cache-dir``, ``--no-cache``
and ``--json``. Anything else (help, other options, S3, profiles, a mistake to report)
returns ``None`` and the typer command runs instead; both call
:func:`~strongroom.backup.create.create_snapshot` and print the same lines.
"""

from __future__ import annotations

import os
import sys

from strongroom.errors import StrongroomError

TYPE_CHECKING = False  # not typing's: this module is the fast start
if TYPE_CHECKING:
    from pathlib import Path

VALUED = {"--repo": "--repo", "-r": "--repo", "--exclude": "--exclude", "-e": "--exclude",
          "--tag": "--tag", "--threads": "--threads", "--cache-dir": "--cache-dir",
          "--host": "--host", "-H": "--host"}  # fmt: skip
"""Options that take a value, by every spelling typer accepts, to their long name."""
FLAGS = ("--json", "--no-cache")
REPEATABLE = ("--exclude", "--tag")


def parse_create(args: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """``(options, paths)``, or ``None`` for anything the fast start leaves to typer."""
    options: dict[str, list[str]] = {}
    paths: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in FLAGS:
            if arg in options:
                return None
            options[arg] = []
        elif arg.startswith("-") and arg != "-":
            spelled, sep, value = arg.partition("=")
            name = VALUED.get(spelled)
            if name is None or (sep and not spelled.startswith("--")):
                return None
            if not sep:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            if name in options and name not in REPEATABLE:
                return None
            options.setdefault(name, []).append(value)
        else:
            paths.append(arg)
        index += 1
    if not paths or "-" in paths:
        return None
    if options.get("--host") == [""]:
        return None  # typer says why
    threads = options.get("--threads", ["1"])[0]
    if not threads.isdigit() or int(threads) < 1:
        return None
    return options, paths


def _fail(exc: BaseException) -> int:
    """The line the typer command's error handling prints; exit status 1."""
    from strongroom.cli.failure import error_line, report

    if isinstance(exc, (StrongroomError, OSError)):
        return report(exc)
    sys.stderr.write(error_line(str(exc) or type(exc).__name__))
    return 1


def run_create(args: list[str]) -> int | None:
    """Run ``backup create ARGS``; ``None`` when the typer command should run instead."""
    if sys.stderr.isatty():
        return None
    parsed = parse_create(args)
    if parsed is None:
        return None
    options, paths = parsed
    repo_spec = (options.get("--repo") or [os.environ.get("STRONGROOM_BACKUP_REPO", "")])[0]
    if not repo_spec or repo_spec.startswith("s3://"):
        return None
    from strongroom.data.kms_direct import direct_from_environment

    try:
        kms = direct_from_environment()
    except StrongroomError:
        return None  # the typer command reports it, in its words
    if kms is None:
        return None
    return _create(kms, repo_spec, options, paths)


def _create(kms: object, repo_spec: str, options: dict[str, list[str]], paths: list[str]) -> int:
    import gc
    import json
    from pathlib import Path

    from strongroom.backup.create import create_snapshot, saved_line, snapshot_json, warn
    from strongroom.backup.repository import Repository
    from strongroom.backup.store import LocalStore
    from strongroom.data.kms_direct import DirectKmsDataKeys

    assert isinstance(kms, DirectKmsDataKeys)
    gc.freeze()  # as open_repo does: start-up objects stay out of full collections
    cache_dir: Path | None = Path(options["--cache-dir"][0]) if "--cache-dir" in options else None
    try:
        try:
            repo = Repository.open(LocalStore(repo_spec), kms)
            snapshot, problems = create_snapshot(
                repo,
                paths,
                excludes=options.get("--exclude", ()),
                tags=options.get("--tag", ()),
                hostname=options.get("--host", [None])[0],
                cache_dir=cache_dir,
                use_cache="--no-cache" not in options,
                threads=int(options.get("--threads", [str(os.cpu_count() or 2)])[0]),
            )
        finally:
            kms.close()
    except (StrongroomError, OSError) as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # as click says it
        return 1
    warn(problems)
    if "--json" in options:
        doc = {**snapshot_json(snapshot), "errors": problems}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(saved_line(snapshot) + "\n")
    sys.stdout.flush()
    return 3 if problems else 0
