"""The mesh API's handlers take and return the generated messages of the mesh model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

from strongroom.kms import SystemClock
from strongroom.mesh.api_ops import MeshApiOps, load_mesh_model
from strongroom.mesh.messages import SHAPES
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore


def test_every_mesh_handler_takes_and_returns_its_messages(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    store = SqliteStore(tmp_path / "mesh.db")
    root = LocalRootOfTrust.create(tmp_path / "master.key")
    try:
        ops = MeshApiOps(store, root, SystemClock(), events.append)
        model = load_mesh_model()
        assert ops.operations == set(model.operations)
        for operation in model.operations:
            hints = get_type_hints(ops._handlers[operation])
            assert hints["request"] is SHAPES[str(model.input_shape(operation))], operation
            assert hints["return"] is SHAPES[str(model.output_shape(operation))], operation
    finally:
        store.close()
        root.close()
