"""Which snapshots a command considers: ``--host``, ``--tag`` and ``--path``, as restic has them.

- ``--host H`` (repeatable): snapshots of any of these hosts;
- ``--tag a,b`` (repeatable): snapshots with all of ``a`` and ``b``, for any one option;
- ``--path P`` (repeatable): snapshots whose paths include every one given.

No option of a kind means no condition of that kind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.backup.snapshot import Snapshot
from strongroom.errors import ValidationError


@dataclass(frozen=True, slots=True)
class SnapshotFilter:
    """The conditions a snapshot must meet (all of them)."""

    hosts: frozenset[str] = frozenset()
    tag_sets: tuple[frozenset[str], ...] = ()
    paths: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, hosts: Iterable[str] = (), tags: Iterable[str] = (), paths: Iterable[str] = ()
    ) -> SnapshotFilter:
        """From the options as given (``tags``: comma-separated lists; ``paths`` absolute)."""
        tag_sets = tuple(frozenset(t for t in option.split(",") if t) for option in tags)
        if any(not s for s in tag_sets):
            raise ValidationError("--tag needs at least one tag name.")
        for path in paths:
            if not os.path.isabs(path):
                raise ValidationError(f"--path {path!r} must be absolute, as snapshots list it.")
        return cls(frozenset(hosts), tag_sets, frozenset(os.path.normpath(p) for p in paths))

    def matches(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` meets every condition."""
        if self.hosts and snapshot.hostname not in self.hosts:
            return False
        if self.tag_sets and not any(s <= set(snapshot.tags) for s in self.tag_sets):
            return False
        return self.paths <= set(snapshot.paths)
