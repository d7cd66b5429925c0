"""KMIP front-end of the key service: TTLV over mutually authenticated TLS (port 5696).

``ttlv`` is the pure codec; ``messages`` the typed request/response views; ``engine`` the
handler table over the operations in ``ops_objects``, ``ops_attributes`` and
``ops_crypto``; ``objects`` the managed-object records sealed under the tenant's KMS key;
``clients`` maps client certificates (issued by the instance CA) to tenants and
principals; ``server`` is the TLS listener behind ``strongroom kmip``.
"""
