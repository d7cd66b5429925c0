"""SPIFFE IDs and trust domains, parsed and checked as the SPIFFE ID standard says.

A SPIFFE ID is ``spiffe://<trust-domain><path>``:

- the scheme is ``spiffe`` in lower case, followed by ``://``;
- the trust domain is one or more of ``a-z 0-9 . - _`` (lower case only; no port, no user
  info, no percent-encoding), at most 255 characters;
- the path is empty or one or more ``/segment``; a segment is one or more of
  ``a-z A-Z 0-9 . - _`` and is neither ``.`` nor ``..``; no trailing ``/``;
- no query, no fragment; the whole ID is at most 2048 bytes.

Anything else raises :class:`~strongroom.errors.ValidationError` saying what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.errors import ValidationError

SCHEME_PREFIX = "spiffe://"
MAX_TRUST_DOMAIN_LENGTH = 255
MAX_ID_LENGTH = 2048
_TRUST_DOMAIN_CHARS = re.compile(r"[a-z0-9._-]+")
_SEGMENT_CHARS = re.compile(r"[a-zA-Z0-9._-]+")


@dataclass(frozen=True, slots=True, order=True)
class TrustDomain:
    """A trust domain name such as ``example.org``."""

    name: str

    @classmethod
    def parse(cls, text: str) -> TrustDomain:
        """Parse ``example.org`` or ``spiffe://example.org`` (an ID with no path)."""
        if "://" in text:
            spiffe_id = SpiffeId.parse(text)
            if spiffe_id.path:
                raise ValidationError(f"a trust domain has no path: {text!r}")
            return spiffe_id.trust_domain
        check_trust_domain_name(text)
        return cls(text)

    @property
    def id(self) -> SpiffeId:
        """The ID of the trust domain itself (``spiffe://example.org``)."""
        return SpiffeId(self, "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, order=True)
class SpiffeId:
    """A validated SPIFFE ID: its trust domain and its path (``""`` or ``/a/b``)."""

    trust_domain: TrustDomain
    path: str

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        """Parse and validate ``spiffe://trust-domain/path``."""
        if len(text.encode("utf-8")) > MAX_ID_LENGTH:
            raise ValidationError(f"a SPIFFE ID is at most {MAX_ID_LENGTH} bytes")
        if not text.startswith(SCHEME_PREFIX):
            raise ValidationError(f"a SPIFFE ID starts with {SCHEME_PREFIX!r}: {text[:80]!r}")
        rest = text[len(SCHEME_PREFIX) :]
        slash = rest.find("/")
        name, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        check_trust_domain_name(name)
        check_path(path)
        return cls(TrustDomain(name), path)

    @classmethod
    def of(cls, trust_domain: TrustDomain | str, path: str) -> SpiffeId:
        """The ID with ``path`` (``/a/b``; validated) in ``trust_domain``."""
        domain = (
            trust_domain
            if isinstance(trust_domain, TrustDomain)
            else TrustDomain.parse(trust_domain)
        )
        check_path(path)
        return cls(domain, path)

    def member_of(self, trust_domain: TrustDomain) -> bool:
        """Whether this ID belongs to ``trust_domain``."""
        return self.trust_domain == trust_domain

    def __str__(self) -> str:
        return f"{SCHEME_PREFIX}{self.trust_domain.name}{self.path}"


def check_trust_domain_name(name: str) -> None:
    """Raise ``ValidationError`` unless ``name`` is a valid trust domain name."""
    if not name:
        raise ValidationError("a SPIFFE ID needs a trust domain")
    if len(name) > MAX_TRUST_DOMAIN_LENGTH:
        raise ValidationError(f"a trust domain is at most {MAX_TRUST_DOMAIN_LENGTH} characters")
    if _TRUST_DOMAIN_CHARS.fullmatch(name) is None:
        raise ValidationError(
            f"a trust domain holds only lower-case letters, digits, '.', '-' and '_': {name[:80]!r}"
        )


def check_path(path: str) -> None:
    """Raise ``ValidationError`` unless ``path`` is a valid SPIFFE ID path (may be empty)."""
    if not path:
        return
    if not path.startswith("/"):
        raise ValidationError(f"a SPIFFE ID path starts with '/': {path[:80]!r}")
    for segment in path[1:].split("/"):
        if not segment:
            raise ValidationError("a SPIFFE ID path has no empty segment nor a trailing '/'")
        if segment in (".", ".."):
            raise ValidationError("a SPIFFE ID path has no '.' or '..' segment")
        if _SEGMENT_CHARS.fullmatch(segment) is None:
            raise ValidationError(
                "a SPIFFE ID path segment holds only letters, digits, '.', '-' and '_': "
                f"{segment[:80]!r}"
            )
