"""AWS JSON 1.1 over SigV4: the client of Strongroom's own operations, and error mapping.

Used by the clients of keys (:mod:`strongroom.data`) and by the mesh
(:mod:`strongroom.mesh`); it imports neither.
"""

from strongroom.awsjson.ca_bundle import check_ca_bundle
from strongroom.awsjson.client import SignedJsonClient, reply_blob, session_credentials
from strongroom.awsjson.errors import aws_errors, strongroom_error

__all__ = [
    "SignedJsonClient",
    "aws_errors",
    "check_ca_bundle",
    "reply_blob",
    "session_credentials",
    "strongroom_error",
]
