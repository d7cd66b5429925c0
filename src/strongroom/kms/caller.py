"""Who is asking: the authenticated principal a request runs as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal acting in one tenant and one region.

    ``tenant`` is the 12-digit account id; ``principal_arn`` names the principal as key
    policies and grants name it (``arn:aws:iam::<account>:user/<name>``);
    ``region`` is taken from the request's SigV4 credential scope (or chosen by the
    in-process client), and keys live in the region they were created in.
    ``is_mesh_agent`` lets the principal have SVIDs issued by the mesh authority
    (``StrongroomMesh.*``); ``is_mesh_admin`` lets it register workloads and revoke identities.
    """

    tenant: str
    principal_arn: str
    access_key_id: str = ""
    region: str = "us-east-1"
    is_admin: bool = False
    is_mesh_agent: bool = False
    is_mesh_admin: bool = False


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key as the API layer needs it to check a SigV4 signature."""

    access_key_id: str
    secret_access_key: str
    caller: Caller

    def __repr__(self) -> str:
        return f"AccessKey(access_key_id={self.access_key_id!r}, secret=<hidden>)"
