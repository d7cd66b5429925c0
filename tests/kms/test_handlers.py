"""One table of handlers: every operation of the vendored model has exactly one, or is refused.

KeyService is a composition (no mixins), so no operation can be defined twice and no
base-class order decides which code runs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import strongroom.kms.ops as ops_package
from strongroom.errors import StrongroomError, UnsupportedOperationError
from strongroom.kms import KeyService
from strongroom.kms.ops import HANDLERS
from strongroom.kms.wire_model import WireModel
from strongroom.testing.service import sqlite_key_service, tenant_caller

MODEL = WireModel.load()


def _handler_functions() -> dict[str, object]:
    """Every public ``f(k, ctx, req)`` function (a handler's shape) in ``strongroom.kms.ops``."""
    found: dict[str, object] = {}
    for info in pkgutil.iter_modules(ops_package.__path__):
        module = importlib.import_module(f"strongroom.kms.ops.{info.name}")
        for name, fn in vars(module).items():
            if (
                inspect.isfunction(fn)
                and fn.__module__ == module.__name__
                and not name.startswith("_")
                and list(inspect.signature(fn).parameters) == ["k", "ctx", "req"]
            ):
                found[f"{module.__name__}.{name}"] = fn
    return found


def test_key_service_has_no_mixins() -> None:
    assert KeyService.__mro__ == (KeyService, object)


def test_every_handler_is_an_operation_of_the_model() -> None:
    assert sorted(set(HANDLERS) - set(MODEL.operations)) == []


def test_each_operation_has_its_own_handler() -> None:
    functions = list(HANDLERS.values())
    assert len(set(map(id, functions))) == len(functions)
    assert all(fn.__module__.startswith("strongroom.kms.ops.") for fn in functions)


def test_every_handler_function_is_in_the_table_once() -> None:
    in_table = {id(fn) for fn in HANDLERS.values()}
    orphans = [name for name, fn in _handler_functions().items() if id(fn) not in in_table]
    assert orphans == []


def test_every_other_operation_is_refused_as_unsupported(tmp_path: Path) -> None:
    refused = sorted(set(MODEL.operations) - set(HANDLERS))
    assert refused  # custom key stores...
    with sqlite_key_service(tmp_path) as service:
        caller = tenant_caller(service, "handlers")
        for operation in refused:
            with pytest.raises(UnsupportedOperationError):
                service.call(caller, operation, {})


def test_an_unknown_operation_is_refused(tmp_path: Path) -> None:
    with sqlite_key_service(tmp_path) as service:
        caller = tenant_caller(service, "handlers")
        with pytest.raises(StrongroomError, match="not supported"):
            service.call(caller, "MakeCoffee", {})
