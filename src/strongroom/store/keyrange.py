"""Name ranges: the half-open interval of names that start with a prefix.

Both stores compare names in code-point order (SQLite's ``BINARY`` collation and
PostgreSQL's ``"C"`` collation compare UTF-8 bytes, which sorts the same way), so "starts
with ``prefix``" is exactly ``prefix <= name < prefix_end(prefix)`` and an index serves it.
"""

from __future__ import annotations

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """Return the least string above every string starting with ``prefix``; ``None`` if none.

    That is ``prefix`` with its last character incremented, after dropping trailing
    U+10FFFF characters (which cannot be incremented). ``None`` means "no upper bound":
    the prefix is empty or made only of U+10FFFF.
    """
    stem = prefix.rstrip(chr(_MAX_CODE_POINT))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if following in _SURROGATES:  # surrogates cannot be encoded; nothing sorts between
        following = _SURROGATES.stop
    return stem[:-1] + chr(following)
