"""The SPIFFE Workload API proto and its generated stubs (see README.md here)."""
