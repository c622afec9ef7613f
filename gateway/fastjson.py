"""JSON parsing for the data path: msgspec's decoder, with orjson's verdict wherever they differ.

Every proxied request parses two JSON documents, the caller's body and the upstream's answer, and
both are mostly text: a 4 KB chat body costs orjson ~65k instructions, msgspec ~43k (its string
decoding is cheaper, non-ASCII above all). ``orjson.loads`` stays the specification; the two parsers
differ in three ways, each handled so that what the gateway does is what it did with orjson alone:

- numbers too large for a float: orjson refuses an int of 309 digits and more (its float would
  overflow), msgspec makes it an int. Such a number is a run of at least 309 digits, so one of every
  154 bytes (``_STRIDE``) and the next sampled byte are both digits; ``loads`` samples the document so
  (~30 bytes of a 4 KB body) and leaves any document where that happens to orjson.
- errors: msgspec raises its own exceptions (``DecodeError``, ``RecursionError`` at a nesting depth
  orjson still accepts, ``UnicodeDecodeError``). ``loads`` then parses again with orjson, whose value
  or ``orjson.JSONDecodeError`` is the answer — a body msgspec refuses is never decided by msgspec.
- integers beyond 64 bits: orjson gives a float, msgspec the exact int. Nothing in the data path
  reads such a number in a way that changes its outcome without also writing the number out, and
  ``orjson.dumps`` refuses such an int (``orjson.JSONEncodeError``). So wherever a parsed document is
  re-serialised (a transformed or translated body, a restored answer), the caller catches that error
  and redoes the step from ``orjson.loads`` of the same bytes (see ``gateway.server.proxy``). The
  places that test a number without writing it (token arrays in ``dialects.openai``,
  ``ratelimit.estimate_tokens``) treat ints outside ``INT_MIN..INT_MAX`` as the floats orjson gives.
- everything else (objects, key order, duplicate keys — the last wins —, strings, floats, true,
  false, null) is the same; ``tests/test_fastjson.py`` checks it, error cases included.
"""

from __future__ import annotations

import msgspec
import orjson

__all__ = ["loads", "exact_loads", "INT_MIN", "INT_MAX"]

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64 - 1
"""The ints ``orjson.loads`` produces (beyond them, floats): code that reads a number of a document
parsed by ``loads`` without writing it out must ignore ints outside this range, as orjson would not
have produced them."""

_decode = msgspec.json.Decoder().decode

exact_loads = orjson.loads
"""The specification: what ``loads`` falls back to, and what a redo after ``JSONEncodeError`` uses."""


_STRIDE = 154
"""Any run of 2 * 154 + 1 = 309 bytes holds two consecutive multiples of 154."""
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
"""bytes.translate table: digits to "0", anything else to a space."""


def loads(data: bytes):
    """``orjson.loads(data)`` (``data`` is ``bytes``), but for integers beyond 64 bits (exact ints
    here, see the module docstring). Raises ``orjson.JSONDecodeError`` exactly when ``orjson.loads``
    does."""
    # maybe a number of 309 digits or more (find, not ``in``: ``bytes in bytes`` formats and discards
    # a TypeError first, ~1.8k instructions)
    if data[::_STRIDE].translate(_DIGITS).find(b"00") >= 0:
        return orjson.loads(data)
    try:
        return _decode(data)
    except Exception:  # msgspec's own errors, RecursionError, UnicodeDecodeError: orjson decides
        return orjson.loads(data)
