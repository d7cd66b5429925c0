"""Options that travel together, declared once: one parameter shows typer several options.

A command declares one parameter of a small frozen dataclass (``endpoint:
EndpointChoice``, ``where: StoreChoice``); :func:`option_group` replaces it, in the
signature typer reads, by one option per field and calls the command with the dataclass
built from them. So a family of commands shares an option list without repeating it::

    with_store = option_group("where", StoreChoice, {"directory": DirOption, ...})

    @with_store
    def ls_command(prefix: str = "", where: StoreChoice = NO_STORE) -> None: ...

The options come after the command's own, in the order given.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

Command = Callable[..., None]


def option_group(
    param: str, build: Callable[..., object], options: Mapping[str, Any]
) -> Callable[[Command], Command]:
    """Show typer ``options`` in place of the command's parameter ``param``.

    ``options`` maps a keyword name to its ``Annotated`` typer option (default ``None``);
    the command gets ``build(**values)`` as ``param``.
    """

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        if param not in signature.parameters:
            raise TypeError(f"{command.__name__} has no {param!r} parameter")
        taken = set(signature.parameters) - {param}
        if taken & set(options):
            raise TypeError(f"{command.__name__} already has {sorted(taken & set(options))}")
        kept = [p for p in signature.parameters.values() if p.name != param]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
            for name, kind in options.items()
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            values = {name: kwargs.pop(name, None) for name in options}
            command(*args, **{param: build(**values)}, **kwargs)

        shown = signature.replace(parameters=[*kept, *added])
        # typer reads the signature and the type hints: both must show the options
        run.__signature__ = shown  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in shown.parameters.values()}
        return run

    return decorate
