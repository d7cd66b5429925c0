"""Per-user keys under a KMS key (crypto-shredding).

The operations, the in-process methods, the ``StrongroomUserKeys`` API entry point.

Modules: :mod:`.operations` (the operations within a request context, authorised and
audited), :mod:`.methods` (typed in-process calls), :mod:`.api` (``call_user_keys`` and the
user-keys service model), :mod:`strongroom.kms.userkey_rows` (row format).
"""
