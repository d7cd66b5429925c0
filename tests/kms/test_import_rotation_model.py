"""Imported key materials against a model: random sequences of imports, rotations, deletions.

A hypothesis state machine drives one key of origin EXTERNAL through ``ImportKeyMaterial``
(new and existing material), ``RotateKeyOnDemand`` and ``DeleteImportedKeyMaterial`` and
checks after every step that the service agrees with a few lines of model: the key is
usable exactly when every bound material is imported, ``ListKeyRotations`` lists each
material with its state, and every ciphertext made so far decrypts exactly when the key is
usable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from strongroom.errors import StrongroomError
from strongroom.kms import KeyService, ManualClock
from strongroom.rootkey import LocalRootOfTrust
from strongroom.store import SqliteStore
from strongroom.testing.key_import import FOREVER, create_external, import_material
from strongroom.testing.service import tenant_caller

NEW = {"ImportType": "NEW_KEY_MATERIAL", **FOREVER}


class ImportedKeyMachine(RuleBasedStateMachine):
    """One imported key and its model: materials in order, which are bound, which present."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        folder = Path(self._dir.name)
        self.service = KeyService(
            SqliteStore(folder / "store.db"),
            LocalRootOfTrust.create(folder / "master.key"),
            ManualClock(),
        )
        self.caller = tenant_caller(self.service, "model")
        self.key = create_external(self.service, self.caller)["KeyId"]
        self.materials: list[bytes] = []  # in import order: [0] is the first
        self.ids: dict[bytes, str] = {}
        self.bound: list[bytes] = []  # in rotation order: [-1] is current
        self.pending: bytes | None = None
        self.present: set[bytes] = set()
        self.blobs: list[bytes] = []

    def teardown(self) -> None:
        self.service.close()
        self._dir.cleanup()

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self.service.call(self.caller, operation, request)
        return reply

    @property
    def usable(self) -> bool:
        return bool(self.bound) and all(m in self.present for m in self.bound)

    @initialize()
    def first_import(self) -> None:
        material = os.urandom(32)
        self.ids[material] = import_material(self.service, self.caller, self.key, material)[
            "KeyMaterialId"
        ]
        self.materials.append(material)
        self.bound.append(material)
        self.present.add(material)

    @precondition(lambda self: self.pending is None)
    @rule()
    def import_new(self) -> None:
        material = os.urandom(32)
        reply = import_material(self.service, self.caller, self.key, material, **NEW)
        self.ids[material] = reply["KeyMaterialId"]
        self.materials.append(material)
        self.pending = material
        self.present.add(material)

    @rule()
    def rotate(self) -> None:
        can = self.usable and self.pending is not None and self.pending in self.present
        try:
            self.call("RotateKeyOnDemand", {"KeyId": self.key})
        except StrongroomError as exc:
            assert not can, exc
            assert exc.aws_type == "KMSInvalidStateException"
            return
        assert can
        assert self.pending is not None
        self.bound.append(self.pending)
        self.pending = None

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        material = data.draw(st.sampled_from(self.materials))
        reply = self.call(
            "DeleteImportedKeyMaterial", {"KeyId": self.key, "KeyMaterialId": self.ids[material]}
        )
        assert reply["KeyMaterialId"] == self.ids[material]
        self.present.discard(material)
        if material == self.pending:  # never bound: forgotten
            self.pending = None
            self.materials.remove(material)

    @rule(data=st.data())
    def reimport(self, data: st.DataObject) -> None:
        material = data.draw(st.sampled_from(self.materials))
        reply = import_material(self.service, self.caller, self.key, material)
        assert reply["KeyMaterialId"] == self.ids[material]
        self.present.add(material)

    @rule()
    def import_unknown(self) -> None:
        try:
            import_material(self.service, self.caller, self.key, os.urandom(32))
        except StrongroomError as exc:
            assert exc.aws_type == "IncorrectKeyMaterialException"
        else:
            raise AssertionError("material the key never had was taken as existing material")

    @rule()
    def encrypt(self) -> None:
        try:
            blob = self.call("Encrypt", {"KeyId": self.key, "Plaintext": b"model"})
        except StrongroomError as exc:
            assert not self.usable and exc.aws_type == "KMSInvalidStateException"
            return
        assert self.usable
        self.blobs.append(blob["CiphertextBlob"])

    @invariant()
    def state_matches(self) -> None:
        meta = self.call("DescribeKey", {"KeyId": self.key})["KeyMetadata"]
        assert meta["KeyState"] == ("Enabled" if self.usable else "PendingImport")
        if self.usable:
            assert meta["CurrentKeyMaterialId"] == self.ids[self.bound[-1]]

    @invariant()
    def materials_listed(self) -> None:
        listed = self.call(
            "ListKeyRotations", {"KeyId": self.key, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}
        )["Rotations"]
        expected = []
        for material in self.materials:
            if material == self.pending:
                state = "PENDING_ROTATION"
            elif material == self.bound[-1]:
                state = "CURRENT"
            else:
                state = "NON_CURRENT"
            imported = "IMPORTED" if material in self.present else "PENDING_IMPORT"
            expected.append((self.ids[material], state, imported))
        got = [(r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"]) for r in listed]
        # rows are listed by version; rotation order is import order for bound materials
        assert sorted(got) == sorted(expected)

    @invariant()
    def blobs_decrypt_when_usable(self) -> None:
        for blob in self.blobs[-3:]:
            try:
                plain = self.call("Decrypt", {"CiphertextBlob": blob})["Plaintext"]
            except StrongroomError as exc:
                assert not self.usable and exc.aws_type == "KMSInvalidStateException"
            else:
                assert self.usable and plain == b"model"


ImportedKeyMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=16, deadline=None
)
TestImportedKeyMachine = ImportedKeyMachine.TestCase
