"""Authorisation: key policies, their conditions, principals, grants, and the authoriser.

The kernel asks one :class:`Authorizer` before any access to a key; :class:`KeyAuthorizer`
is the one Strongroom uses (tenancy, key policy, grants; deny by default).
"""

from strongroom.kms.authz.authorizer import Authorizer, DenyAll, KeyAuthorizer

__all__ = ["Authorizer", "DenyAll", "KeyAuthorizer"]
