"""KMIP tags and enumerations Strongroom reads or writes (KMIP 2.1 section 11 and 1.4 section 9).

Only the values the server uses are named; the numbers are the specification's (a test
compares them with PyKMIP's tables).
"""

from __future__ import annotations

import enum


class Tag(enum.IntEnum):
    """Item tags."""

    ACTIVATION_DATE = 0x420001
    APPLICATION_DATA = 0x420002
    APPLICATION_NAMESPACE = 0x420003
    APPLICATION_SPECIFIC_INFORMATION = 0x420004
    ATTRIBUTE = 0x420008
    ATTRIBUTE_INDEX = 0x420009
    ATTRIBUTE_NAME = 0x42000A
    ATTRIBUTE_VALUE = 0x42000B
    AUTHENTICATION = 0x42000C
    BATCH_COUNT = 0x42000D
    BATCH_ERROR_CONTINUATION_OPTION = 0x42000E
    BATCH_ITEM = 0x42000F
    BATCH_ORDER_OPTION = 0x420010
    BLOCK_CIPHER_MODE = 0x420011
    COMPROMISE_DATE = 0x420020
    COMPROMISE_OCCURRENCE_DATE = 0x420021
    CONTACT_INFORMATION = 0x420022
    CRYPTOGRAPHIC_ALGORITHM = 0x420028
    CRYPTOGRAPHIC_LENGTH = 0x42002A
    CRYPTOGRAPHIC_PARAMETERS = 0x42002B
    CRYPTOGRAPHIC_USAGE_MASK = 0x42002C
    DEACTIVATION_DATE = 0x42002F
    DESTROY_DATE = 0x420033
    DIGEST = 0x420034
    HASHING_ALGORITHM = 0x420038
    INITIAL_DATE = 0x420039
    IV_COUNTER_NONCE = 0x42003D
    KEY = 0x42003F
    KEY_BLOCK = 0x420040
    KEY_COMPRESSION_TYPE = 0x420041
    KEY_FORMAT_TYPE = 0x420042
    KEY_MATERIAL = 0x420043
    KEY_VALUE = 0x420045
    KEY_WRAPPING_DATA = 0x420046
    KEY_WRAPPING_SPECIFICATION = 0x420047
    LAST_CHANGE_DATE = 0x420048
    LINK = 0x42004A
    LINK_TYPE = 0x42004B
    LINKED_OBJECT_IDENTIFIER = 0x42004C
    MAXIMUM_ITEMS = 0x42004F
    MAXIMUM_RESPONSE_SIZE = 0x420050
    NAME = 0x420053
    NAME_TYPE = 0x420054
    NAME_VALUE = 0x420055
    OBJECT_GROUP = 0x420056
    OBJECT_TYPE = 0x420057
    OFFSET = 0x420058
    OPAQUE_DATA_TYPE = 0x420059
    OPAQUE_DATA_VALUE = 0x42005A
    OPAQUE_OBJECT = 0x42005B
    OPERATION = 0x42005C
    OPERATION_POLICY_NAME = 0x42005D
    PADDING_METHOD = 0x42005F
    PROTOCOL_VERSION = 0x420069
    PROTOCOL_VERSION_MAJOR = 0x42006A
    PROTOCOL_VERSION_MINOR = 0x42006B
    QUERY_FUNCTION = 0x420074
    REQUEST_HEADER = 0x420077
    REQUEST_MESSAGE = 0x420078
    REQUEST_PAYLOAD = 0x420079
    RESPONSE_HEADER = 0x42007A
    RESPONSE_MESSAGE = 0x42007B
    RESPONSE_PAYLOAD = 0x42007C
    RESULT_MESSAGE = 0x42007D
    RESULT_REASON = 0x42007E
    RESULT_STATUS = 0x42007F
    REVOCATION_MESSAGE = 0x420080
    REVOCATION_REASON = 0x420081
    REVOCATION_REASON_CODE = 0x420082
    SECRET_DATA = 0x420085
    SECRET_DATA_TYPE = 0x420086
    SERVER_INFORMATION = 0x420088
    STATE = 0x42008D
    STORAGE_STATUS_MASK = 0x42008E
    SYMMETRIC_KEY = 0x42008F
    TEMPLATE_ATTRIBUTE = 0x420091
    TIME_STAMP = 0x420092
    UNIQUE_BATCH_ITEM_ID = 0x420093
    UNIQUE_IDENTIFIER = 0x420094
    VENDOR_IDENTIFICATION = 0x42009D
    FRESH = 0x4200A8
    ORIGINAL_CREATION_DATE = 0x4200BC
    DATA = 0x4200C2
    RANDOM_IV = 0x4200C5
    MAC_DATA = 0x4200C6
    AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA = 0x4200FE
    AUTHENTICATED_ENCRYPTION_TAG = 0x4200FF
    TAG_LENGTH = 0x4200CE
    OFFSET_ITEMS = 0x4200D4
    LOCATED_ITEMS = 0x4200D5
    DESCRIPTION = 0x4200FC
    COMMENT = 0x4200FD
    SENSITIVE = 0x420120
    ALWAYS_SENSITIVE = 0x420121
    EXTRACTABLE = 0x420122
    NEVER_EXTRACTABLE = 0x420123
    ATTRIBUTES = 0x420125
    ATTRIBUTE_REFERENCE = 0x42013B
    CURRENT_ATTRIBUTE = 0x42013C
    NEW_ATTRIBUTE = 0x42013D


class Operation(enum.IntEnum):
    """Operation numbers."""

    CREATE = 0x01
    REGISTER = 0x03
    REKEY = 0x04
    LOCATE = 0x08
    GET = 0x0A
    GET_ATTRIBUTES = 0x0B
    GET_ATTRIBUTE_LIST = 0x0C
    ADD_ATTRIBUTE = 0x0D
    MODIFY_ATTRIBUTE = 0x0E
    DELETE_ATTRIBUTE = 0x0F
    ACTIVATE = 0x12
    REVOKE = 0x13
    DESTROY = 0x14
    QUERY = 0x18
    DISCOVER_VERSIONS = 0x1E
    ENCRYPT = 0x1F
    DECRYPT = 0x20
    MAC = 0x23
    SET_ATTRIBUTE = 0x31


class ResultStatus(enum.IntEnum):
    """Result Status."""

    SUCCESS = 0
    OPERATION_FAILED = 1


class ResultReason(enum.IntEnum):
    """Result Reason (why an operation failed)."""

    ITEM_NOT_FOUND = 0x01
    RESPONSE_TOO_LARGE = 0x02
    AUTHENTICATION_NOT_SUCCESSFUL = 0x03
    INVALID_MESSAGE = 0x04
    OPERATION_NOT_SUPPORTED = 0x05
    MISSING_DATA = 0x06
    INVALID_FIELD = 0x07
    FEATURE_NOT_SUPPORTED = 0x08
    CRYPTOGRAPHIC_FAILURE = 0x0A
    ILLEGAL_OPERATION = 0x0B
    PERMISSION_DENIED = 0x0C
    INDEX_OUT_OF_BOUNDS = 0x0E
    KEY_FORMAT_TYPE_NOT_SUPPORTED = 0x10
    NOT_EXTRACTABLE = 0x17
    GENERAL_FAILURE = 0x100


class ObjectType(enum.IntEnum):
    """Object Type."""

    CERTIFICATE = 0x01
    SYMMETRIC_KEY = 0x02
    PUBLIC_KEY = 0x03
    PRIVATE_KEY = 0x04
    SECRET_DATA = 0x07
    OPAQUE_OBJECT = 0x08


class LinkType(enum.IntEnum):
    """Link Type (the links ReKey sets between an old key and its replacement)."""

    REPLACEMENT_OBJECT = 0x0106
    REPLACED_OBJECT = 0x0107


class State(enum.IntEnum):
    """Object states (KMIP 1.4 section 3.22)."""

    PRE_ACTIVE = 1
    ACTIVE = 2
    DEACTIVATED = 3
    COMPROMISED = 4
    DESTROYED = 5
    DESTROYED_COMPROMISED = 6


class CryptographicAlgorithm(enum.IntEnum):
    """Cryptographic Algorithm values Strongroom creates keys for or computes with."""

    AES = 0x03
    HMAC_SHA1 = 0x07
    HMAC_SHA224 = 0x08
    HMAC_SHA256 = 0x09
    HMAC_SHA384 = 0x0A
    HMAC_SHA512 = 0x0B


class BlockCipherMode(enum.IntEnum):
    """Block Cipher Mode values Encrypt and Decrypt accept."""

    CBC = 0x01
    GCM = 0x09


class PaddingMethod(enum.IntEnum):
    """Padding Method values."""

    NONE = 0x01
    PKCS5 = 0x03


class HashingAlgorithm(enum.IntEnum):
    """Hashing Algorithm values MAC accepts."""

    SHA_1 = 0x04
    SHA_224 = 0x05
    SHA_256 = 0x06
    SHA_384 = 0x07
    SHA_512 = 0x08


class KeyFormatType(enum.IntEnum):
    """Key Format Type values."""

    RAW = 0x01
    OPAQUE = 0x02
    TRANSPARENT_SYMMETRIC_KEY = 0x07


class NameType(enum.IntEnum):
    """Name Type."""

    UNINTERPRETED_TEXT_STRING = 1
    URI = 2


class QueryFunction(enum.IntEnum):
    """Query Function."""

    QUERY_OPERATIONS = 1
    QUERY_OBJECTS = 2
    QUERY_SERVER_INFORMATION = 3


class UsageMask(enum.IntFlag):
    """Cryptographic Usage Mask bits."""

    SIGN = 0x01
    VERIFY = 0x02
    ENCRYPT = 0x04
    DECRYPT = 0x08
    WRAP_KEY = 0x10
    UNWRAP_KEY = 0x20
    EXPORT = 0x40
    MAC_GENERATE = 0x80
    MAC_VERIFY = 0x100


class RevocationReasonCode(enum.IntEnum):
    """Revocation Reason Code (a compromise moves the object to Compromised)."""

    UNSPECIFIED = 1
    KEY_COMPROMISE = 2
    CA_COMPROMISE = 3
    AFFILIATION_CHANGED = 4
    SUPERSEDED = 5
    CESSATION_OF_OPERATION = 6
    PRIVILEGE_WITHDRAWN = 7


SUPPORTED_VERSIONS: tuple[tuple[int, int], ...] = (
    (2, 1),
    (2, 0),
    (1, 4),
    (1, 3),
    (1, 2),
    (1, 1),
    (1, 0),
)
"""Protocol versions served, newest first (the order DiscoverVersions answers in)."""
