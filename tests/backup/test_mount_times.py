"""``backup mount --time-template``: snapshot directories named by time as ``restic mount`` does.

restic formats each snapshot's time with a Go layout, by default ``2006-01-02T15:04:05Z07:00``,
in the zone the snapshot recorded (its machine's local zone); Strongroom records UTC and names
by the mounting machine's zone (``TZ``), with a strftime template.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.backup.mountfs import SnapshotFS
from strongroom.backup.repository import Repository, parse_time
from strongroom.backup.timenames import TimeTemplate, rfc3339_name
from strongroom.errors import ValidationError
from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.http import AwsCredentials

from .cli_support import Cli, env_for, kms_of
from .test_mount import names, needs_fuse, read_all
from .test_mount_layout import backup_as, mounted

INDIA = timezone(timedelta(hours=5, minutes=30))
INDIA_TZ = "IST-5:30"  # the same as a POSIX TZ string (needs no zoneinfo files)
WHEN = datetime(2026, 12, 6, 2, 3, 43, 123456, tzinfo=UTC)


def test_the_default_is_restics_layout_in_the_zone_asked() -> None:
    assert TimeTemplate.of(None, UTC).name(WHEN) == "2026-12-06T02:03:43Z"
    assert TimeTemplate.of(None, INDIA).name(WHEN) == "2026-12-06T07:33:43+05:30"
    west = timezone(-timedelta(hours=3, minutes=30))
    assert TimeTemplate.of(None, west).name(WHEN) == "2026-12-05T22:33:43-03:30"
    assert TimeTemplate.of("%Y-%m-%d_%H-%M-%S", INDIA).name(WHEN) == "2026-12-06_07-33-43"
    assert TimeTemplate.of("%G-W%V", UTC).name(WHEN) == "2026-W49"


@given(st.datetimes(timezones=st.sampled_from([UTC, INDIA, timezone(-timedelta(hours=8))])))
def test_default_names_read_back_as_the_same_second(when: datetime) -> None:
    name = rfc3339_name(when)
    assert parse_time(name) == when.replace(microsecond=0)
    assert name.endswith("Z") == (when.utcoffset() == timedelta(0))


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("2006-01-02_15-04-05", "names every snapshot alike"),  # restic's Go layout
        ("snapshot", "names every snapshot alike"),
        ("%Y/%m/%d", "cannot be a file name"),
        ("%D", "cannot be a file name"),  # 12/06/26
    ],
)
def test_templates_that_cannot_name_snapshots_are_refused(template: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        TimeTemplate.of(template)


def test_every_time_directory_follows_the_template(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("one")
    backup_as(repo, src, "web1", ["daily"])
    src.write_text("two")
    backup_as(repo, src, "web1", ["daily"])
    times = TimeTemplate.of("%Y-%m-%d_%H-%M-%S.%f", INDIA)
    fs = SnapshotFS(repo, times=times)
    expected = [times.name(parse_time(s.time)) for s in repo.snapshots()]
    for folder in ("/snapshots", "/hosts/web1", "/tags/daily"):
        assert names(fs, folder)[2:] == [*expected, "latest"], folder
        assert fs.readlink(f"{folder}/latest") == expected[1]
        assert read_all(fs, f"{folder}/{expected[0]}/f") == b"one"


# -- through a real mount ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant(server: RunningServer) -> AwsCredentials:
    return add_tenant(server.data_dir, "backup-mount-times")


@needs_fuse
def test_mounted_time_names_in_local_time(
    server: RunningServer, tenant: AwsCredentials, tmp_path: Path
) -> None:
    cli = Cli(env_for(server, tenant, tmp_path / "aws", TZ=INDIA_TZ), tmp_path)
    key = str(kms_of(server, tenant).create_key()["KeyMetadata"]["Arn"])
    where = str(tmp_path / "backups")
    (tmp_path / "src").mkdir()
    (tmp_path / "src/f").write_text("x")
    cli("backup", "init", "--repo", where, "--key", key)
    made = cli.json("backup", "create", "--repo", where, "--host", "web1", "src")
    when = parse_time(made["time"])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with mounted(cli, where, mnt) as count:  # restic's default, in the zone of TZ
        name = when.astimezone(INDIA).strftime("%Y-%m-%dT%H:%M:%S+05:30")
        assert count == 1 and sorted(os.listdir(mnt / "snapshots")) == [name, "latest"]
        assert os.readlink(mnt / "hosts/web1/latest") == name
    with mounted(cli, where, mnt, "--time-template", "%Y-%m-%d_%H-%M-%S"):
        name = when.astimezone(INDIA).strftime("%Y-%m-%d_%H-%M-%S")
        assert sorted(os.listdir(mnt / "hosts/web1")) == [name, "latest"]
        assert (mnt / "snapshots" / name / "src/f").read_text() == "x"
    cli.env["TZ"] = "UTC0"
    with mounted(cli, where, mnt) as count:  # UTC: the names of before --time-template
        utc = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert count == 1 and sorted(os.listdir(mnt / "snapshots")) == [utc, "latest"]
    proc = cli("backup", "mount", "--repo", where, str(mnt), "--time-template", "%F/%T", expect=1)
    line = proc.stderr.decode()
    assert "cannot be a file name" in line and line.count("\n") == 1, line
