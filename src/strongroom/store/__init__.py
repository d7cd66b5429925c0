"""Durable key stores: SQLite (embedded default) and PostgreSQL (scale-out).

:func:`open_store` picks one from a URL. :class:`PostgresStore` is imported on first use,
so importing this package loads no PostgreSQL driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import ValidationError
from strongroom.ports import Store
from strongroom.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from strongroom.store.postgres import PostgresStore

__all__ = ["PostgresStore", "SqliteStore", "open_store"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"


def open_store(url: str) -> Store:
    """Open the key store named by ``url``.

    - ``postgresql://user:password@host:5432/db`` or ``postgres://...``: a
      :class:`PostgresStore` (any libpq URL parameters work, e.g. ``?sslmode=require``);
    - ``sqlite:///abs/path.db`` (absolute) or ``sqlite://rel/path.db`` (relative to the
      working directory): a :class:`SqliteStore`;
    - anything without ``://``: a filesystem path to a SQLite file.

    Examples: ``open_store("/var/lib/strongroom/keys.db")``,
    ``open_store("postgresql://strongroom@db.internal/strongroom")``.
    """
    if url.startswith(_POSTGRES_SCHEMES):
        from strongroom.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith(_SQLITE_SCHEME):
        path = url[len(_SQLITE_SCHEME) :]
        if not path:
            raise ValidationError("a sqlite:// store URL needs a path")
        return SqliteStore(path)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValidationError(f"unsupported key store URL scheme {scheme!r}")
    if not url:
        raise ValidationError("the key store URL is empty")
    return SqliteStore(url)


def __getattr__(name: str) -> object:
    if name == "PostgresStore":
        from strongroom.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
