"""CRC-32 of a concatenation from the CRCs of its parts (zlib's ``crc32_combine``).

A queue file's end marker carries the CRC-32 of everything before it. When smtpd
spills a large message to disk as it arrives, the spool's CRC is known but the
header that goes in front of it is not yet; combining the two CRCs avoids reading
the spooled content back. Python's :mod:`zlib` does not expose ``crc32_combine``,
so this is the same GF(2) matrix method, in O(log n) 32x32 matrix squarings.
"""

from __future__ import annotations

__all__ = ["crc32_combine"]

_POLY = 0xEDB88320  # CRC-32 (IEEE 802.3), reflected, as zlib.crc32 uses


def _times(matrix: list[int], vector: int) -> int:
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """``zlib.crc32(a + b)`` given ``crc32(a)``, ``crc32(b)`` and ``len(b)``."""
    if len2 <= 0:
        return crc1  # as zlib: nothing appended
    # The operator that appends one zero bit to a CRC, squared thrice: one zero byte.
    operator = [_POLY] + [1 << n for n in range(31)]
    for _ in range(3):
        operator = _square(operator)
    # Append len2 zero bytes to crc1 (binary exponentiation of that operator).
    while len2:
        if len2 & 1:
            crc1 = _times(operator, crc1)
        len2 >>= 1
        if len2:
            operator = _square(operator)
    return crc1 ^ crc2
