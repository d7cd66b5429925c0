"""The handlers of the AWS KMS operations: one table, one plain function per operation.

Each handler takes the :class:`~strongroom.kms.kernel.Kernel` (its collaborators), the
request context and the request, and returns the response. Handlers are grouped by concept
in the modules of this package; :data:`HANDLERS` is the only place an operation name meets
its code, so no operation can exist twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from strongroom.kms.kernel import Kernel, OpContext
from strongroom.kms.ops import (
    aliases,
    asymmetric,
    crypto,
    grants,
    imports,
    kem,
    key_agreement,
    key_usage,
    keys,
    mac,
    multi_region,
    policy,
    rotation,
    tags,
)

Handler = Callable[[Kernel, OpContext, Any], Any]
"""``handler(kernel, ctx, request) -> response``: the operation's generated request record in,
its response record out (``None`` for an operation without output), from
:mod:`strongroom.kms.messages`; :class:`~strongroom.kms.service.KeyService` converts."""


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "CancelKeyDeletion": keys.cancel_key_deletion,
        "CreateAlias": aliases.create_alias,
        "CreateGrant": grants.create_grant,
        "CreateKey": keys.create_key,
        "Decrypt": crypto.decrypt,
        "Decapsulate": kem.decapsulate,
        "DeleteAlias": aliases.delete_alias,
        "DeleteImportedKeyMaterial": imports.delete_imported_key_material,
        "DeriveSharedSecret": key_agreement.derive_shared_secret,
        "DescribeKey": keys.describe_key,
        "DisableKey": keys.disable_key,
        "DisableKeyRotation": rotation.disable_key_rotation,
        "EnableKey": keys.enable_key,
        "EnableKeyRotation": rotation.enable_key_rotation,
        "Encapsulate": kem.encapsulate,
        "Encrypt": crypto.encrypt,
        "GenerateDataKey": crypto.generate_data_key,
        "GenerateDataKeyPair": asymmetric.generate_data_key_pair,
        "GenerateDataKeyPairWithoutPlaintext": asymmetric.generate_data_key_pair_without_plaintext,
        "GenerateDataKeyWithoutPlaintext": crypto.generate_data_key_without_plaintext,
        "GenerateMac": mac.generate_mac,
        "GenerateRandom": crypto.generate_random,
        "GetKeyLastUsage": key_usage.get_key_last_usage,
        "GetKeyPolicy": policy.get_key_policy,
        "GetKeyRotationStatus": rotation.get_key_rotation_status,
        "GetParametersForImport": imports.get_parameters_for_import,
        "GetPublicKey": asymmetric.get_public_key,
        "ImportKeyMaterial": imports.import_key_material,
        "ListAliases": aliases.list_aliases,
        "ListGrants": grants.list_grants,
        "ListKeyPolicies": policy.list_key_policies,
        "ListKeyRotations": rotation.list_key_rotations,
        "ListKeys": keys.list_keys,
        "ListResourceTags": tags.list_resource_tags,
        "ListRetirableGrants": grants.list_retirable_grants,
        "PutKeyPolicy": policy.put_key_policy,
        "ReEncrypt": crypto.re_encrypt,
        "ReplicateKey": multi_region.replicate_key,
        "RetireGrant": grants.retire_grant,
        "RevokeGrant": grants.revoke_grant,
        "RotateKeyOnDemand": rotation.rotate_key_on_demand,
        "ScheduleKeyDeletion": keys.schedule_key_deletion,
        "Sign": asymmetric.sign,
        "TagResource": tags.tag_resource,
        "UntagResource": tags.untag_resource,
        "UpdateAlias": aliases.update_alias,
        "UpdateKeyDescription": keys.update_key_description,
        "UpdatePrimaryRegion": multi_region.update_primary_region,
        "Verify": asymmetric.verify,
        "VerifyMac": mac.verify_mac,
    }
)
"""Every AWS KMS operation Strongroom implements, by its name in the service model."""
