"""Strongroom: self-hosted encryption infrastructure for multi-tenant services."""

__version__ = "0.1.0"
