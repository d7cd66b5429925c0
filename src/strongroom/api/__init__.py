"""The AWS KMS-compatible HTTP API: SigV4 authentication and the JSON 1.1 protocol (ASGI).

Build the app with :func:`create_app` from anything that implements :class:`KmsBackend`
(``strongroom.kms.KeyService`` does) and serve it with any ASGI server (uvicorn).
"""

from strongroom.api.app import MAX_REQUEST_BYTES, KmsApi, create_app
from strongroom.api.backend import KmsBackend, MeshBackend, UserKeyBackend
from strongroom.api.shapes import ShapeCodec
from strongroom.api.sigv4 import SignedRequest, SigV4Verifier, Verified

__all__ = [
    "MAX_REQUEST_BYTES",
    "KmsApi",
    "KmsBackend",
    "MeshBackend",
    "ShapeCodec",
    "SigV4Verifier",
    "SignedRequest",
    "UserKeyBackend",
    "Verified",
    "create_app",
]
