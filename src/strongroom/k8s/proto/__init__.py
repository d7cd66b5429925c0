"""Python stubs of the official Kubernetes KMS v2 ``api.proto`` (see README.md here).

``api.proto`` is ``k8s.io/kms`` ``apis/v2/api.proto`` unchanged (Apache-2.0, The
Kubernetes Authors). ``api_pb2.py``, ``api_pb2.pyi`` and ``api_pb2_grpc.py`` are generated
from it by grpcio-tools and committed; regenerate them with the command in README.md.
"""
