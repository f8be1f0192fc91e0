"""Byte mutations for the fuzz tests (also imported by their LiteRT child
process, which runs with ``PYTHONPATH=<tests>``)."""
from __future__ import annotations

from hypothesis import strategies as st


def mutate(data: bytes, draw) -> bytes:
    """Truncate, bit-flip, overwrite a 4/8-byte word, or splice random bytes."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["truncate", "flip", "word", "splice"]))
        if not b:
            break
        pos = draw(st.integers(0, len(b) - 1))
        if how == "truncate":
            del b[pos:]
        elif how == "flip":
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif how == "word":
            width = draw(st.sampled_from([4, 8]))
            word = draw(st.sampled_from([0, 1, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1, 64, len(b)]))
            b[pos:pos + width] = (word % 2 ** (8 * width)).to_bytes(width, "little" if draw(st.booleans()) else "big")
        else:
            b[pos:pos] = draw(st.binary(max_size=64))
    return bytes(b)
