"""Workload identities: SPIFFE IDs, X.509- and JWT-SVIDs, trust bundles, the mesh CA.

The CA of a trust domain (:mod:`.ca`) with its keys in the key store (:mod:`.authority`),
registration entries (:mod:`.registry`), and the server's own certificate from the mesh
CA (:mod:`.ingress`).
"""
