"""How ``backup mount`` names a snapshot by its time (``--time-template``).

``restic mount`` names each snapshot directory by ``sn.Time.Format(template)``: a Go time
layout, by default ``2006-01-02T15:04:05Z07:00`` (RFC 3339 to the second, ``Z`` for UTC,
else the offset), and in the time zone the snapshot recorded, which is the local zone of the
machine that made it. Strongroom records snapshot times in UTC, so the nearest equal is the
local zone of the machine that mounts (``TZ``): a snapshot made and mounted on one machine
gets restic's name, and under ``TZ=UTC`` the names stay in UTC.

A template here is a strftime format (``%Y-%m-%d_%H-%M-%S``), not a Go layout. One that
names every time alike (a Go layout is one: it has no ``%``), or whose names could not be
file names (a ``/``: restic makes subdirectories of those, Strongroom does not), is refused
before the mount starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from strongroom.errors import ValidationError

# Two instants that differ in every field strftime shows (date, time, weekday, AM/PM).
_SAMPLES = (
    datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
    datetime(2012, 11, 10, 21, 28, 37, 48, tzinfo=UTC),
)


def rfc3339_name(when: datetime) -> str:
    """Name ``when`` as restic's default layout does (``2006-01-02T15:04:05Z07:00``).

    RFC 3339 to the second: ``Z`` for UTC, else the offset as ``+hh:mm``.
    """
    offset = when.utcoffset() or timedelta(0)
    text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}"  # (strftime's %Y does not pad to 4)
    if not offset:
        return text + "Z"
    sign, minutes = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, rest = divmod(int(minutes.total_seconds()) // 60, 60)
    return f"{text}{sign}{hours:02d}:{rest:02d}"


@dataclass(frozen=True, slots=True)
class TimeTemplate:
    """A snapshot's time as a directory name.

    ``template`` is a strftime format (``None``: restic's default, :func:`rfc3339_name`),
    applied in ``zone`` (``None``: this machine's local zone, ``TZ``).
    """

    template: str | None = None
    zone: tzinfo | None = None

    @classmethod
    def of(cls, template: str | None, zone: tzinfo | None = None) -> TimeTemplate:
        """From ``--time-template`` as given; :class:`ValidationError` if it cannot serve."""
        made = cls(template, zone)
        if template is None:
            return made
        try:
            first, second = (made.name(when) for when in _SAMPLES)
        except ValueError as exc:  # a format strftime refuses
            raise ValidationError(
                f"--time-template {template!r} is not a strftime format: {exc}"
            ) from None
        if first == second:
            raise ValidationError(
                f"--time-template {template!r} names every snapshot alike: it takes strftime "
                "directives (%Y-%m-%d_%H-%M-%S), not restic's Go layouts (2006-01-02)."
            )
        for name in (first, second):
            if "/" in name or "\0" in name or name in ("", ".", ".."):
                raise ValidationError(
                    f"--time-template {template!r} makes {name!r}, which cannot be a file "
                    "name (subdirectories, as restic makes of a '/', are not offered)."
                )
        return made

    def name(self, when: datetime) -> str:
        """The name of a snapshot made at ``when`` (an aware time)."""
        local = when.astimezone(self.zone)
        if self.template is None:
            return rfc3339_name(local)
        return local.strftime(self.template)


RESTIC_TIMES = TimeTemplate()
"""The default: restic's layout, in this machine's local zone."""
