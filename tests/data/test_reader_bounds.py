import io
import tracemalloc

from strongroom.crypto.hazmat import new_key
from strongroom.data import EncryptedFile, encrypt_stream


def test_a_huge_read_allocates_only_what_is_left() -> None:
    key = new_key()
    src, dst = io.BytesIO(b"x" * 1000), io.BytesIO()
    encrypt_stream(src, dst, key, b"wrapped", "key-id")
    dst.seek(0)
    reader = EncryptedFile(dst, lambda header: key)
    tracemalloc.start()
    try:
        data = reader.read(10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data == b"x" * 1000
    assert peak < 50 * 1024 * 1024
    assert reader.read(10) == b""
