"""Durable key stores: SQLite (embedded default) and PostgreSQL (scale-out)."""

from strongroom.store.sqlite import SqliteStore

__all__ = ["SqliteStore"]
