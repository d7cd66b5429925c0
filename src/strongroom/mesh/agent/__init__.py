"""The Workload API agent: SVIDs for the workloads of one machine, on a unix socket.

It serves the SPIFFE Workload API (:mod:`.workload_api`, :mod:`.serve`) to callers the
kernel attests (:mod:`.attest`), signing in process or through a server (:mod:`.remote`),
both behind the protocols of :mod:`.ports`.
"""
