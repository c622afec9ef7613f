"""JSON parsing for the data path: ``orjson.loads``'s result, from msgspec's faster decoder where the
two are known to agree.

Every proxied request parses two JSON documents, the caller's body and the upstream's answer, and
both are mostly text: a 4 KB chat body costs orjson ~65k instructions, msgspec ~43k (its string
decoding is cheaper, non-ASCII above all). ``orjson.loads`` stays the specification, and ``loads``
returns exactly what it returns or raises what it raises. The two parsers differ only in:

- numbers of many digits: orjson makes an int beyond 64 bits (``-2**63 .. 2**64-1``) a float and
  refuses one of 309 digits or more; msgspec makes both exact ints. An int of at most 18 digits is
  inside 64 bits, and a run of 19 or more digits holds two consecutive multiples of 9 (``_STRIDE``),
  so ``loads`` samples every ninth byte (~450 bytes of a 4 KB body, in C) and leaves any document
  with two adjacent digit samples to orjson: long numbers, and the odd long digit run in a text;
- errors: msgspec raises its own exceptions (``DecodeError``, ``RecursionError`` at a nesting depth
  orjson still accepts, ``UnicodeDecodeError``). ``loads`` then parses again with orjson, whose value
  or ``orjson.JSONDecodeError`` is the answer: a body msgspec refuses is never decided by msgspec.

Everything else (objects, key order, duplicate keys — the last wins —, strings, floats, true, false,
null) is the same; ``tests/test_fastjson.py`` checks it, error cases and long numbers included.
"""

from __future__ import annotations

import msgspec
import orjson

__all__ = ["loads"]

_decode = msgspec.json.Decoder().decode

_STRIDE = 9
"""Any run of 2 * 9 + 1 = 19 bytes holds two consecutive multiples of 9."""
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
"""bytes.translate table: digits to "0", anything else to a space."""


def loads(data: bytes):
    """``orjson.loads(data)`` for ``bytes``: the same value, or the same ``orjson.JSONDecodeError``."""
    # maybe a number of 19 digits or more (find, not ``in``: ``bytes in bytes`` formats and discards
    # a TypeError first, ~1.8k instructions)
    if data[::_STRIDE].translate(_DIGITS).find(b"00") >= 0:
        return orjson.loads(data)
    try:
        return _decode(data)
    except Exception:  # msgspec's own errors, RecursionError, UnicodeDecodeError: orjson decides
        return orjson.loads(data)
