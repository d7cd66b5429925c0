"""The mTLS sidecar and the TLS-only egress proxy.

:mod:`.sidecar` (inbound termination, outbound origination) over :mod:`.tls`,
:mod:`.pool` and :mod:`.relay`; :mod:`.egress` (HTTP CONNECT, upstream TLS verified);
their YAML configurations (:mod:`.policy`, :mod:`.policy_egress`, :mod:`.yaml_config`);
:mod:`.run` starts them as processes.
"""
