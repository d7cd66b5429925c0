"""The vendored AWS KMS model against the installed botocore's: drift is reported, not fatal.

A new botocore release that adds an operation must not turn the suite red (the server
answers by its vendored model, and refuses what it does not know as unsupported); the
drift is shown as a skipped test with the report as its reason. ``STRONGROOM_MODEL_DRIFT=fail``
makes it a failure, for a CI job that wants to hear about it first.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from strongroom.testing.model_drift import (
    compare,
    current_drift,
    strip_documentation,
    vendored_model,
    write_vendored,
)


def test_installed_botocore_matches_the_vendored_model() -> None:
    drift = current_drift()
    if drift.drifted:
        if os.environ.get("STRONGROOM_MODEL_DRIFT") == "fail":
            pytest.fail(drift.report())
        pytest.skip(drift.report())
    assert "matches" in drift.report()


def test_a_new_operation_and_a_new_enum_value_are_named() -> None:
    ours = vendored_model()
    theirs = copy.deepcopy(ours)
    theirs["operations"]["FrobnicateKey"] = {"name": "FrobnicateKey"}
    theirs["shapes"]["KeySpec"]["enum"].append("NEW_SPEC")
    del theirs["operations"]["Decrypt"]
    drift = compare(ours, theirs, "9.9.9")
    assert drift.new_operations == ("FrobnicateKey",)
    assert drift.removed_operations == ("Decrypt",)
    assert drift.changed_shapes == ("KeySpec",)
    report = drift.report()
    assert "botocore 9.9.9" in report and "FrobnicateKey" in report and "KeySpec" in report


def test_documentation_does_not_count_as_drift() -> None:
    ours = vendored_model()
    theirs = copy.deepcopy(ours)
    theirs["shapes"]["KeySpec"]["documentation"] = "<p>words</p>"
    theirs["operations"]["Decrypt"]["documentation"] = "<p>more words</p>"
    assert not compare(ours, strip_documentation(theirs), "1").drifted


def test_re_vendoring_writes_the_installed_model_in_the_vendored_layout(tmp_path: Path) -> None:
    target = tmp_path / "kms.json"
    write_vendored(target)
    written = json.loads(target.read_text("utf-8"))
    assert "Decrypt" in written["operations"]
    assert "documentation" not in json.dumps(written["operations"]["Decrypt"])
    assert target.read_text("utf-8").startswith('{\n"metadata":{')
