"""Roots of trust: a PKCS#11 HSM, or a local master key file for development."""

from strongroom.rootkey.local import LocalRootOfTrust

__all__ = ["LocalRootOfTrust"]
