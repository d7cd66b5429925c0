"""Helpers for tests of Strongroom and of applications that use it.

Throwaway servers (:mod:`.postgres`, :mod:`.softhsm`) that the project's own suite uses too.
"""
