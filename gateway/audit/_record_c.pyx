# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The audit record line, compiled: the same bytes as ``build_record`` + ``chain.seal``, cheaper.

``gateway.audit.record`` is the reference; this module is its twin for the writer's hot path. The
Python path builds a dict of dicts and lets orjson sort and serialize it; here the canonical JSON
(sorted keys, no spaces, orjson's escaping) is written straight into a C buffer in key order, so a
record costs no dicts and no sort. The writer calls ``chain(items, i, out, seq, head, room)``: a
turn's records, each written with its ``seq``, ``ts`` and ``prev`` in place and hashed where it
lies, appended to the writer's buffer in one go; it stops before anything it leaves to the reference
(a record it finds unusual — an odd type, a float where an int was expected, a value the reference
would turn into an incomplete record — or an appended dict) and where a checkpoint is due; the
caller takes the Python path for that one, which is the specification.

What the record needs judged (client strings that may be personal data, principals, codes) is asked
of the reference's own functions and memos, so both paths judge alike; only the frequent cases
(a remembered safe string, the gateway's own request ids, ASCII normalization) are done here, and
the fingerprints (HMAC-SHA256 from kept pad states) and the chain hash, in C.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.bytearray cimport PyByteArray_Resize, PyByteArray_AS_STRING
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_FromStringAndSize
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy, memset
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.dict cimport PyDict_Next, PyDict_GetItem
from cpython.mem cimport PyMem_Free
from libc.math cimport fabs, signbit

cdef extern from "<math.h>":
    long double nearbyintl(long double) nogil

cdef extern from "<float.h>":
    int LDBL_MANT_DIG
from libc.string cimport strlen
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.math cimport nearbyint

import hashlib

import orjson

from gateway.audit import chain as _chain
from gateway.audit import record as _ref
from gateway.auth.principal import Principal

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    int PyUnicode_KIND(object)
    void* PyUnicode_DATA(object)
    int PyUnicode_1BYTE_KIND
    int PyUnicode_Compare(object, object) except? -1
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL

cdef object _OUTCOMES = _ref.OUTCOMES
cdef dict _SAFE = _ref._SAFE      # the reference's memos, shared: one judgement for both paths
cdef dict _CODES = _ref._CODES
cdef object _ref_clean = _ref._clean
cdef object _ref_code = _ref._code
cdef object _ref_normalized = _ref._normalized
cdef object _ref_principal = _ref._principal
cdef dict _REF_PRINCIPALS = _ref._PRINCIPALS
cdef object _dumps = orjson.dumps

cdef dict _KINDS = {}        # detector -> normalization kind (the reference's _kind)
cdef dict _PRINCIPAL_JSON = {}  # Principal -> its canonical JSON, for callers judged wholly safe
cdef Py_ssize_t _MAX_MEMO = _ref._SAFE_MAX
cdef object _ring = None     # the last ring; its HMAC pad states below (one identity check per value)
cdef uint32_t _inner[8]
cdef uint32_t _outer[8]

cdef const char* _HEX = b"0123456789abcdef"


class Unusual(Exception):
    """Raised inside the encoder for anything left to the Python path (never escapes ``chain``)."""


# ------------------------------------------------------------------------------------- the buffer

cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _grow(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    cdef char* p
    if cap < b.n + extra:
        cap = b.n + extra + 256
    p = <char*>realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p, b.cap = p, cap
    return 0


cdef inline int _put(Buf* b, const char* s, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        _grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline Py_ssize_t _plain(const char* u, Py_ssize_t n) noexcept nogil:
    """How many leading bytes of ``u`` JSON takes as they are (no control, ``"`` or ``\\``), eight at
    a time: most strings have none, and then the whole string is one copy."""
    cdef Py_ssize_t i = 0
    cdef uint64_t v, x
    cdef uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    while i + 8 <= n:
        memcpy(&v, u + i, 8)
        # a byte < 0x20, == 0x22 or == 0x5C sets its high bit here (a false alarm only after a real one)
        x = ((v - 0x2020202020202020ULL) & ~v) \
            | (((v ^ 0x2222222222222222ULL) - ones) & ~(v ^ 0x2222222222222222ULL)) \
            | (((v ^ 0x5C5C5C5C5C5C5C5CULL) - ones) & ~(v ^ 0x5C5C5C5C5C5C5C5CULL))
        if x & highs:
            break
        i += 8
    while i < n:
        if <unsigned char>u[i] < 0x20 or u[i] == 0x22 or u[i] == 0x5C:
            break
        i += 1
    return i


cdef int _str(Buf* b, object s) except -1:
    """``s`` (exactly a str) as orjson writes it: UTF-8, with ``"``, ``\\`` and controls escaped.
    A lone surrogate raises (orjson refuses it too: the reference records it as invalid)."""
    cdef Py_ssize_t n, i, start
    cdef const char* u
    cdef unsigned char c
    cdef char esc[6]
    if type(s) is not str:
        raise Unusual()
    u = PyUnicode_AsUTF8AndSize(s, &n)
    if b.n + n + 2 > b.cap:
        _grow(b, n + 2)
    b.p[b.n] = b'"'
    b.n += 1
    start = _plain(u, n)
    if start == n:  # the common case: nothing to escape
        memcpy(b.p + b.n, u, n)
        b.p[b.n + n] = b'"'
        b.n += n + 1
        return 0
    _put(b, u, start)
    for i in range(start, n):
        c = <unsigned char>u[i]
        if c >= 0x20 and c != 0x22 and c != 0x5C:
            continue
        _put(b, u + start, i - start)
        start = i + 1
        if c == 0x22:
            _put(b, b'\\"', 2)
        elif c == 0x5C:
            _put(b, b'\\\\', 2)
        elif c == 0x08:
            _put(b, b'\\b', 2)
        elif c == 0x09:
            _put(b, b'\\t', 2)
        elif c == 0x0A:
            _put(b, b'\\n', 2)
        elif c == 0x0C:
            _put(b, b'\\f', 2)
        elif c == 0x0D:
            _put(b, b'\\r', 2)
        else:
            esc[0], esc[1], esc[2], esc[3] = b'\\', b'u', b'0', b'0'
            esc[4], esc[5] = _HEX[c >> 4], _HEX[c & 15]
            _put(b, esc, 6)
    _put(b, u + start, n - start)
    _put(b, b'"', 1)
    return 0


cdef int _int(Buf* b, object v) except -1:
    """An int in decimal (by hand: snprintf's format parsing costs more than the digits)."""
    if type(v) is not int:
        raise Unusual()
    return _cint(b, v)  # OverflowError beyond 64 bits: the Python path (orjson takes up to 2**64 - 1)


cdef int _cint(Buf* b, long long x) except -1:
    cdef char tmp[24]
    cdef unsigned long long u
    cdef int i = 24
    u = <unsigned long long>(-x) if x < 0 else <unsigned long long>x
    while True:
        i -= 1
        tmp[i] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if x < 0:
        i -= 1
        tmp[i] = b'-'
    _put(b, tmp + i, 24 - i)
    return 0


cdef int _value(Buf* b, object v, int depth=0) except -1:
    """A JSON value of the plain types orjson and this encoder agree on; anything else is Unusual."""
    cdef type t = type(v)
    cdef bytes raw
    if v is None:
        _put(b, b"null", 4)
    elif t is str:
        _str(b, v)
    elif t is bool:
        if v:
            _put(b, b"true", 4)
        else:
            _put(b, b"false", 5)
    elif t is int:
        _int(b, v)
    elif t is float:  # orjson's shortest form differs from repr (0.00001 vs 1e-05): ask orjson
        raw = _dumps(v)
        _put(b, PyBytes_AS_STRING(raw), len(raw))
    elif (t is list or t is tuple) and depth < 4:
        _put(b, b"[", 1)
        for i in range(len(v)):
            if i:
                _put(b, b",", 1)
            _value(b, <object>(PyList_GET_ITEM(v, i) if t is list else PyTuple_GET_ITEM(v, i)), depth + 1)
        _put(b, b"]", 1)
    elif t is dict and depth < 4 and len(<dict>v) <= 8:
        _small_dict(b, <dict>v, depth)
    elif t is dict and depth < 4:
        keys = list(v)
        for k in keys:
            if type(k) is not str:  # orjson refuses them: the reference's record is invalid_record
                raise Unusual()
        keys.sort()  # code point order is UTF-8 byte order, orjson's OPT_SORT_KEYS
        _put(b, b"{", 1)
        for i, k in enumerate(keys):
            if i:
                _put(b, b",", 1)
            _str(b, k)
            _put(b, b":", 1)
            _value(b, v[k], depth + 1)
        _put(b, b"}", 1)
    else:
        raise Unusual()
    return 0


cdef int _small_dict(Buf* b, dict v, int depth) except -1:
    """A dict of up to 8 members (the decision's actions): keys sorted in place in a C array by
    insertion (code point order, as orjson's OPT_SORT_KEYS), no list and no sort call."""
    cdef PyObject* keys[8]
    cdef PyObject* key
    cdef PyObject* val
    cdef Py_ssize_t pos = 0, n = 0, i, j
    while PyDict_Next(v, &pos, &key, &val):
        if type(<object>key) is not str:  # orjson refuses them: the reference's record is invalid_record
            raise Unusual()
        j = n
        while j > 0 and PyUnicode_Compare(<object>keys[j - 1], <object>key) > 0:
            keys[j] = keys[j - 1]
            j -= 1
        keys[j] = key
        n += 1
    _put(b, b"{", 1)
    for i in range(n):  # (the dict is not changed meanwhile: the loop runs no Python code)
        if i:
            _put(b, b",", 1)
        _str(b, <object>keys[i])
        _put(b, b":", 1)
        _value(b, <object>PyDict_GetItem(v, <object>keys[i]), depth + 1)
    _put(b, b"}", 1)
    return 0


cdef int _latency(Buf* b, object latency) except -1:
    """``round(float(latency), 3)`` as orjson writes it: for a finite float below 1e9 the correctly
    rounded 3-decimal text with its trailing zeros dropped (a decimal of at most 12 significant
    digits is its own shortest form); anything else as the reference computes it. Where ``long
    double`` has a 64-bit mantissa, ``x * 1000`` is exact in it (53 + 7 bits) and rounding it to an
    integer, half to even, is that correct rounding without a decimal conversion."""
    cdef double x
    cdef long double y
    cdef unsigned long long q
    cdef char tmp[32]
    cdef int i = 32, digits = 3
    cdef char* txt
    cdef Py_ssize_t n
    if type(latency) is float:
        x = latency
        if fabs(x) < 1e9:  # (false for nan)
            if LDBL_MANT_DIG >= 64:
                y = nearbyintl(<long double>fabs(x) * 1000.0)
                q = <unsigned long long>y
                while digits > 1 and q % 10 == 0:  # trailing zeros go, one decimal stays
                    q //= 10
                    digits -= 1
                while True:
                    i -= 1
                    tmp[i] = <char>(48 + q % 10)
                    q //= 10
                    digits -= 1
                    if digits == 0:
                        i -= 1
                        tmp[i] = b'.'
                    if digits < 0 and q == 0:
                        break
                if signbit(x):
                    i -= 1
                    tmp[i] = b'-'
                _put(b, tmp + i, 32 - i)
                return 0
            txt = PyOS_double_to_string(x, b'f', 3, 0, NULL)
            n = strlen(txt)
            while txt[n - 1] == b'0' and txt[n - 2] != b'.':
                n -= 1
            try:
                _put(b, txt, n)
            finally:
                PyMem_Free(txt)
            return 0
    _value(b, round(float(latency), 3) if latency is not None else None)
    return 0


# ------------------------------------------------------------------------------ the judged strings

cdef object _clean(object v, object ring):
    if v is None:
        return None
    if type(v) is str and v in _SAFE:
        return v
    return _ref_clean(v, ring)


cdef object _code(object v):
    if v is None:
        return None
    if type(v) is str and (v in _CODES or _code_shape(v)):
        return v
    return _ref_code(v)


cdef bint _code_shape(str v):
    """What the reference's ``_CODE`` accepts: 1 to 64 of ``[A-Za-z0-9_.:/-]`` (the per-request
    decision ids, which its memo leaves out, are checked here instead of by a regex)."""
    cdef Py_ssize_t n, i
    cdef const char* u
    cdef char c
    if not PyUnicode_IS_ASCII(v):
        return False
    u = PyUnicode_AsUTF8AndSize(v, &n)
    if n < 1 or n > 64:
        return False
    for i in range(n):
        c = u[i]
        if not (b'0' <= c <= b'9' or b'a' <= c <= b'z' or b'A' <= c <= b'Z' or c == b'_' or c == b'.'
                or c == b':' or c == b'/' or c == b'-'):
            return False
    return True


cdef bint _our_id(object v):
    """32 lowercase hex: an id the gateway made (the reference's first ``_OUR_ID`` form)."""
    cdef Py_ssize_t n, i
    cdef const char* u
    cdef char c
    if type(v) is not str or not PyUnicode_IS_ASCII(v):
        return False
    u = PyUnicode_AsUTF8AndSize(v, &n)
    if n != 32:
        return False
    for i in range(32):
        c = u[i]
        if not (b'0' <= c <= b'9' or b'a' <= c <= b'f'):
            return False
    return True


cdef int _principal(Buf* b, object p, object ring) except -1:
    if p is None:
        _put(b, b"null", 4)
        return 0
    cdef bytes cached = None
    if type(p) is Principal:
        cached = _PRINCIPAL_JSON.get(p)
        if cached is not None:
            _put(b, PyBytes_AS_STRING(cached), len(cached))
            return 0
    out = _ref_principal(p, ring)
    if type(out) is not dict:
        raise Unusual()
    cdef Py_ssize_t start = b.n
    _put(b, b'{"agency":', 10)
    _value(b, out["agency"])
    _put(b, b',"jurisdiction":', 16)
    _value(b, out["jurisdiction"])
    _put(b, b',"sub":', 7)
    _value(b, out["sub"])
    _put(b, b"}", 1)
    # Remembered exactly when the reference remembered it: every string of it was judged safe.
    if type(p) is Principal and p in _REF_PRINCIPALS:
        if len(_PRINCIPAL_JSON) >= _MAX_MEMO:
            _PRINCIPAL_JSON.clear()
        _PRINCIPAL_JSON[p] = PyBytes_FromStringAndSize(b.p + start, b.n - start)
    return 0


# ------------------------------------------------------------------------------ the Exchange's slots

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

from gateway.exchange import Exchange as _Exchange_cls

cdef object _Exchange = _Exchange_cls
cdef tuple _EX_NAMES = ("request_id", "endpoint", "principal", "model", "level", "segments", "findings", "decision", "route", "upstream_status", "upstream_latency_ms", "outcome", "bytes_in", "bytes_out", "error")
cdef Py_ssize_t _EX_OFF[15]


cdef int _ex_offsets() except -1:
    """Where ``Exchange`` keeps each slot the record reads (its member descriptors say): read in place,
    a slot costs a load instead of a type lookup and a descriptor call."""
    cdef int k
    for k, name in enumerate(_EX_NAMES):
        descr = _Exchange.__dict__[name]
        if type(descr).__name__ != "member_descriptor":
            raise TypeError(name)
        _EX_OFF[k] = (<PyMemberDescrObject*>descr).d_member.offset
    return 0


_ex_offsets()


cdef enum:
    _X_REQUEST_ID = 0
    _X_ENDPOINT = 1
    _X_PRINCIPAL = 2
    _X_MODEL = 3
    _X_LEVEL = 4
    _X_SEGMENTS = 5
    _X_FINDINGS = 6
    _X_DECISION = 7
    _X_ROUTE = 8
    _X_UPSTREAM_STATUS = 9
    _X_UPSTREAM_LATENCY_MS = 10
    _X_OUTCOME = 11
    _X_BYTES_IN = 12
    _X_BYTES_OUT = 13
    _X_ERROR = 14


cdef inline object _ex(object ex, int k):
    """``getattr(ex, _EX_NAMES[k])``, from the slot itself when ``ex`` is exactly an Exchange."""
    cdef PyObject* v
    if type(ex) is _Exchange:
        v = (<PyObject**>((<char*><PyObject*>ex) + _EX_OFF[k]))[0]
        if v != NULL:
            return <object>v
    return getattr(ex, <str>_EX_NAMES[k])


# --------------------------------------------------------------------------------------- findings

cdef enum:
    _ID = 0
    _EXACT = 1
    _FOLDED = 2
    _TEXT = 3


cdef bytes _normalized(str det, str value):
    """The reference's ``_normalized``: ASCII identifiers, e-mails and secrets here; text (a regex)
    and non-ASCII values (NFKC) by the reference."""
    cdef Py_ssize_t n, j
    cdef const char* u
    cdef bytes out
    if not PyUnicode_IS_ASCII(value):
        return _ref_normalized(det, value)
    kind = _KINDS.get(det)
    if kind is None:
        kind = _ref._kind(det)
        if len(_KINDS) < 1024:
            _KINDS[det] = kind
    cdef int k = kind
    if k == _TEXT:
        return _ref_normalized(det, value)
    u = PyUnicode_AsUTF8AndSize(value, &n)
    out = PyBytes_FromStringAndSize(NULL, n)  # the normalized value is never longer
    j = _ascii_normalized(k, u, n, PyBytes_AS_STRING(out))
    return out[:j] if j != n else out


# SHA-256 (FIPS 180-4) in C for the fingerprints: an HMAC of a short value is two compressions after
# the kept pad states, and doing them here costs no Python objects (the reference's copy/update/
# digest/hexdigest calls are most of its cost). The long chain line is hashed by OpenSSL instead.

cdef extern from *:
    """
    /* SHA-256 blocks with the x86 SHA extensions (SHA-NI) where the CPU has them: ~10x the portable
       rounds below. Compiled for that target per function, chosen at import by CPUID. */
    #include <stdint.h>
    #include <stddef.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #include <cpuid.h>
    static int soberana_sha_ni(void) {
        unsigned int a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        if (!(c & (1u << 9)) || !(c & (1u << 19))) return 0;   /* SSSE3, SSE4.1 */
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
        return (b >> 29) & 1;                                  /* SHA */
    }
    __attribute__((target("sha,sse4.1,ssse3")))
    static void soberana_sha256_ni(uint32_t *state, const uint8_t *data, size_t blocks, const uint32_t *k) {
        const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
        __m128i t = _mm_loadu_si128((const __m128i *)state);
        __m128i s1 = _mm_loadu_si128((const __m128i *)(state + 4));
        __m128i s0, abef, cdgh, m, w[4];
        int g;
        t = _mm_shuffle_epi32(t, 0xB1);            /* CDAB */
        s1 = _mm_shuffle_epi32(s1, 0x1B);          /* EFGH */
        s0 = _mm_alignr_epi8(t, s1, 8);            /* ABEF */
        s1 = _mm_blend_epi16(s1, t, 0xF0);         /* CDGH */
        while (blocks--) {
            abef = s0; cdgh = s1;
            #pragma GCC unroll 16
            for (g = 0; g < 16; g++) {  /* unrolled: the four message words stay in registers */
                if (g < 4) {
                    w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), mask);
                } else {  /* W[4g..4g+3] from the four words before */
                    __m128i x = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                    x = _mm_add_epi32(x, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                    w[g & 3] = _mm_sha256msg2_epu32(x, w[(g + 3) & 3]);
                }
                m = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)(k + 4 * g)));
                s1 = _mm_sha256rnds2_epu32(s1, s0, m);
                s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));
            }
            s0 = _mm_add_epi32(s0, abef);
            s1 = _mm_add_epi32(s1, cdgh);
            data += 64;
        }
        t = _mm_shuffle_epi32(s0, 0x1B);           /* FEBA */
        s1 = _mm_shuffle_epi32(s1, 0xB1);          /* DCHG */
        s0 = _mm_blend_epi16(t, s1, 0xF0);         /* DCBA */
        s1 = _mm_alignr_epi8(s1, t, 8);            /* HGFE */
        _mm_storeu_si128((__m128i *)state, s0);
        _mm_storeu_si128((__m128i *)(state + 4), s1);
    }
    #else
    static int soberana_sha_ni(void) { return 0; }
    static void soberana_sha256_ni(uint32_t *state, const uint8_t *data, size_t blocks, const uint32_t *k) {
        (void)state; (void)data; (void)blocks; (void)k;
    }
    #endif
    """
    int soberana_sha_ni() nogil
    void soberana_sha256_ni(uint32_t* state, const uint8_t* data, size_t blocks, const uint32_t* k) nogil


cdef uint32_t _K[64]
for _i, _v in enumerate((
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2)):
    _K[_i] = _v
cdef uint32_t _IV[8]
for _i, _v in enumerate((0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)):
    _IV[_i] = _v


cdef inline uint32_t _rotr(uint32_t x, int n) noexcept nogil:
    return (x >> n) | (x << (32 - n))


cdef void _compress(uint32_t* h, const uint8_t* blk) noexcept nogil:
    cdef uint32_t w[64]
    cdef uint32_t a, b, c, d, e, f, g, k, t1, t2
    cdef int i
    for i in range(16):
        w[i] = (<uint32_t>blk[4 * i] << 24) | (<uint32_t>blk[4 * i + 1] << 16) \
            | (<uint32_t>blk[4 * i + 2] << 8) | <uint32_t>blk[4 * i + 3]
    for i in range(16, 64):
        w[i] = w[i - 16] + (_rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)) \
            + w[i - 7] + (_rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10))
    a, b, c, d, e, f, g, k = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    for i in range(64):
        t1 = k + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[i] + w[i]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        k, g, f, e, d, c, b, a = g, f, e, d + t1, c, b, a, t1 + t2
    h[0] += a; h[1] += b; h[2] += c; h[3] += d
    h[4] += e; h[5] += f; h[6] += g; h[7] += k


cdef bint _use_ni = soberana_sha_ni()
"""Whether SHA-256 runs on the CPU's SHA extensions (the portable rounds above otherwise)."""


cdef inline void _blocks(uint32_t* h, const uint8_t* data, Py_ssize_t n) noexcept nogil:
    """Compress ``n`` 64-byte blocks into ``h``."""
    cdef Py_ssize_t i
    if _use_ni:
        soberana_sha256_ni(h, data, n, _K)
        return
    for i in range(n):
        _compress(h, data + 64 * i)


cdef void _finish(uint32_t* h, const uint8_t* data, Py_ssize_t n, uint8_t* out,
                  Py_ssize_t before=64) noexcept nogil:
    """Absorb ``data`` after the ``before`` bytes already in ``h`` (one 64-byte HMAC pad, or none
    from the IV), pad, write the digest."""
    cdef uint8_t blk[128]
    cdef Py_ssize_t full = n // 64, rem = n % 64
    cdef uint64_t bits = (<uint64_t>(before + n)) * 8
    cdef int j, last
    if full:
        _blocks(h, data, full)
    memcpy(blk, data + 64 * full, rem)
    blk[rem] = 0x80
    last = 128 if rem >= 56 else 64  # the length takes one more block when it does not fit
    memset(blk + rem + 1, 0, last - rem - 1)
    for j in range(8):
        blk[last - 1 - j] = <uint8_t>(bits >> (8 * j))
    _blocks(h, blk, last // 64)
    for j in range(8):
        out[4 * j], out[4 * j + 1] = <uint8_t>(h[j] >> 24), <uint8_t>(h[j] >> 16)
        out[4 * j + 2], out[4 * j + 3] = <uint8_t>(h[j] >> 8), <uint8_t>h[j]


cdef int _pads(object ring) except -1:
    """The SHA-256 states after HMAC's inner and outer key blocks of the ring's fingerprint key."""
    global _ring
    cdef bytes key = ring.hmac_key("fingerprint")
    cdef uint8_t blk[64]
    cdef Py_ssize_t i
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    for i in range(64):
        blk[i] = (<uint8_t>key[i] if i < len(key) else 0) ^ 0x36
    memcpy(_inner, _IV, 32)
    _compress(_inner, blk)
    for i in range(64):
        blk[i] ^= 0x36 ^ 0x5C
    memcpy(_outer, _IV, 32)
    _compress(_outer, blk)
    _ring = ring
    return 0


cdef int _fingerprint(Buf* b, object ring, bytes data) except -1:
    """``"<32 hex>"``: the first 16 bytes of HMAC-SHA256(fingerprint key, data), as the reference."""
    return _fingerprint_raw(b, ring, <const uint8_t*>PyBytes_AS_STRING(data), len(data))


cdef int _fingerprint_raw(Buf* b, object ring, const uint8_t* data, Py_ssize_t n) except -1:
    cdef uint32_t h[8]
    cdef uint8_t d[32]
    cdef char out[34]
    cdef int j
    if ring is not _ring:
        _pads(ring)
    memcpy(h, _inner, 32)
    _finish(h, data, n, d)
    memcpy(h, _outer, 32)
    _finish(h, d, 32, d)
    out[0] = out[33] = b'"'
    for j in range(16):
        out[1 + 2 * j], out[2 + 2 * j] = _HEX[d[j] >> 4], _HEX[d[j] & 15]
    _put(b, out, 34)
    return 0


cdef enum:
    _MAX_DETS = 16     # more detectors or values in one record than these: the dict version below
    _MAX_VALS = 64
    _VAL_BYTES = 4096


cdef struct _Det:
    PyObject* name     # borrowed from a Finding of the Exchange, which outlives the call
    Py_ssize_t count
    int kind


cdef struct _Val:
    int det
    Py_ssize_t off, n  # the normalized bytes, in the value buffer


cdef int _findings(Buf* b, object ex, object ring) except -1:
    """The reference's ``_findings``: per detector in order of first appearance, its count and the
    fingerprints of its distinct normalized values. Kept in C arrays (no dict, no slice and no bytes
    per finding when the text is ASCII); an unusually large record takes ``_findings_dicts``."""
    cdef _Det dets[_MAX_DETS]
    cdef _Val vals[_MAX_VALS]
    cdef char vb[_VAL_BYTES]
    cdef Py_ssize_t nd = 0, nv = 0, used = 0, i = 0, n, start, end, tl, k, j, m, at
    cdef const char* u
    cdef unsigned char c
    cdef bint ascii, first, vfirst
    cdef bytes norm
    cdef str det
    segments = _ex(ex, _X_SEGMENTS) or ()
    n = len(segments)
    for found in (_ex(ex, _X_FINDINGS) or ()):
        if found:
            text = getattr(segments[i], "text", None) if i < n else None
            if type(text) is not str:
                text = None
            else:  # one byte a character (ASCII or Latin-1, as most PT/ES text): values read in place
                ascii = PyUnicode_IS_ASCII(text)
                u = <const char*>PyUnicode_DATA(text) if PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND else NULL
                tl = len(<str>text)
            for f in found:
                if not isinstance(f, tuple) or PyTuple_GET_SIZE(f) != 5:
                    raise Unusual()
                o_det, o_st, o_en = <object>PyTuple_GET_ITEM(f, 0), <object>PyTuple_GET_ITEM(f, 3), \
                    <object>PyTuple_GET_ITEM(f, 4)
                if type(o_det) is not str or type(o_st) is not int or type(o_en) is not int:
                    raise Unusual()
                det = <str>o_det
                k = 0
                while k < nd and dets[k].name != <PyObject*>det and <str>dets[k].name != det:
                    k += 1
                if k == nd:
                    if nd == _MAX_DETS:
                        return _findings_dicts(b, ex, ring)
                    kind = _KINDS.get(det)
                    if kind is None:
                        kind = _ref._kind(det)
                        if len(_KINDS) < 1024:
                            _KINDS[det] = kind
                    dets[k].name, dets[k].count, dets[k].kind = <PyObject*>det, 0, kind
                    nd += 1
                dets[k].count += 1
                if text is None:
                    continue
                start, end = o_st, o_en
                if not (0 <= start < end <= tl):
                    continue
                if nv == _MAX_VALS:
                    return _findings_dicts(b, ex, ring)
                at = used
                m = end - start
                if u != NULL and dets[k].kind != _TEXT and (ascii or _plain_ascii(u + start, m)):
                    if used + m > _VAL_BYTES:
                        return _findings_dicts(b, ex, ring)
                    used += _ascii_normalized(dets[k].kind, u + start, m, vb + used)
                else:  # text kinds and non-ASCII text: the reference's normalization
                    norm = _normalized(det, text[start:end])
                    m = len(norm)
                    if used + m > _VAL_BYTES:
                        return _findings_dicts(b, ex, ring)
                    memcpy(vb + used, PyBytes_AS_STRING(norm), m)
                    used += m
                for j in range(nv):  # distinct values only (a few per detector)
                    if vals[j].det == k and vals[j].n == used - at and memcmp(vb + vals[j].off, vb + at, used - at) == 0:
                        used = at
                        break
                else:
                    vals[nv].det, vals[nv].off, vals[nv].n = k, at, used - at
                    nv += 1
        i += 1
    _put(b, b"[", 1)
    for k in range(nd):
        if k:
            _put(b, b",", 1)
        _put(b, b'{"count":', 9)
        _cint(b, dets[k].count)
        _put(b, b',"detector":', 12)
        _str(b, <object>dets[k].name)
        _put(b, b',"fingerprints":[', 17)
        vfirst = True
        for j in range(nv):
            if vals[j].det != k:
                continue
            if not vfirst:
                _put(b, b",", 1)
            vfirst = False
            _fingerprint_raw(b, ring, <const uint8_t*>vb + vals[j].off, vals[j].n)
        _put(b, b"]}", 2)
    _put(b, b"]", 1)
    return 0


cdef inline bint _plain_ascii(const char* u, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if <unsigned char>u[i] >= 0x80:
            return False
    return True


cdef Py_ssize_t _ascii_normalized(int kind, const char* u, Py_ssize_t n, char* o) noexcept nogil:
    """``_normalized`` of an ASCII value of an identifier, folded or exact kind, written to ``o``
    (at most ``n`` bytes); returns its length."""
    cdef Py_ssize_t i, j = 0, lo = 0, hi = n
    cdef unsigned char c
    if kind == _ID:  # letters and digits only, upper-cased
        for i in range(n):
            c = <unsigned char>u[i]
            if b'0' <= c <= b'9' or b'A' <= c <= b'Z':
                o[j] = c
                j += 1
            elif b'a' <= c <= b'z':
                o[j] = c - 32
                j += 1
        return j
    if kind == _FOLDED:  # str.strip() (ASCII whitespace: \t\n\v\f\r, \x1c-\x1f, space), lower-cased
        while lo < hi and (u[lo] == 32 or 9 <= u[lo] <= 13 or 28 <= u[lo] <= 31):
            lo += 1
        while hi > lo and (u[hi - 1] == 32 or 9 <= u[hi - 1] <= 13 or 28 <= u[hi - 1] <= 31):
            hi -= 1
        for i in range(lo, hi):
            c = <unsigned char>u[i]
            o[i - lo] = c + 32 if b'A' <= c <= b'Z' else c
        return hi - lo
    memcpy(o, u, n)  # exact
    return n


cdef int _findings_dicts(Buf* b, object ex, object ring) except -1:
    """``_findings`` with dicts, for records with more detectors, values or value bytes than its
    arrays hold."""
    cdef dict counts = {}
    cdef dict values = {}
    cdef Py_ssize_t i = 0, n, start, end, tl
    cdef bint first
    segments = ex.segments or ()
    n = len(segments)
    for found in (ex.findings or ()):
        if found:
            text = getattr(segments[i], "text", None) if i < n else None
            if type(text) is not str:
                text = None
            for f in found:
                if not isinstance(f, tuple) or len(f) != 5:
                    raise Unusual()
                det, st, en = f[0], f[3], f[4]
                if type(det) is not str or type(st) is not int or type(en) is not int:
                    raise Unusual()
                c = counts.get(det)
                if c is None:
                    counts[det] = 1
                    vals = values[det] = {}
                else:
                    counts[det] = c + 1
                    vals = values[det]
                if text is not None:
                    start, end, tl = st, en, len(text)
                    if 0 <= start < end <= tl:
                        vals[_normalized(det, text[start:end])] = None
        i += 1
    _put(b, b"[", 1)
    first = True
    for det, c in counts.items():
        if not first:
            _put(b, b",", 1)
        first = False
        _put(b, b'{"count":', 9)
        _int(b, c)
        _put(b, b',"detector":', 12)
        _str(b, det)
        _put(b, b',"fingerprints":[', 17)
        vfirst = True
        for v in values[det]:
            if not vfirst:
                _put(b, b",", 1)
            vfirst = False
            _fingerprint(b, ring, v)
        _put(b, b"]}", 2)
    _put(b, b"]", 1)
    return 0


# ------------------------------------------------------------------------------ decision, upstream

cdef int _decision(Buf* b, object d) except -1:
    if d is None:
        _put(b, b"null", 4)
        return 0
    route = getattr(d, "route", None)
    actions = getattr(d, "by_detector", None) or {}
    rules = getattr(d, "rules", None) or []
    if type(actions) is not dict or (type(rules) is not list and type(rules) is not tuple):
        raise Unusual()
    _put(b, b'{"actions":', 11)
    _value(b, actions)
    _put(b, b',"destination":', 15)
    _value(b, getattr(d, "destination", None))
    _put(b, b',"policy_revision":', 19)
    _value(b, getattr(d, "policy_revision", None))
    _put(b, b',"residency":', 13)
    _value(b, getattr(route, "residency", None))
    _put(b, b',"route":', 9)
    _value(b, getattr(route, "upstream", None))
    _put(b, b',"rules":', 9)
    _value(b, rules)
    _put(b, b"}", 1)
    return 0


cdef int _upstream(Buf* b, object ex) except -1:
    r = _ex(ex, _X_ROUTE)
    status = _ex(ex, _X_UPSTREAM_STATUS)
    if r is None and status is None:
        _put(b, b"null", 4)
        return 0
    cfg = getattr(r, "cfg", r)
    latency = _ex(ex, _X_UPSTREAM_LATENCY_MS)
    _put(b, b'{"latency_ms":', 14)
    _latency(b, latency)
    _put(b, b',"name":', 8)
    _value(b, getattr(cfg, "name", None))
    _put(b, b',"residency":', 13)
    _value(b, getattr(cfg, "residency", None))
    _put(b, b',"status":', 10)
    _value(b, status)
    _put(b, b"}", 1)
    return 0


# ------------------------------------------------------------------------------------- the record

cdef int _record(Buf* b, object ex, object ring, const char* head, long long seq, const char* ts) except -1:
    """The record of ``ex`` chained at ``seq`` after ``head`` (64 hex), members in orjson's sorted
    order, without its closing ``"hash"``: ``ts`` is the 24 bytes of ``iso_ts``."""
    d = _ex(ex, _X_DECISION)
    outcome = _ex(ex, _X_OUTCOME)
    outcome = outcome if outcome in _OUTCOMES else "rejected"
    rid = _ex(ex, _X_REQUEST_ID)
    rid = rid if _our_id(rid) else _clean(rid, ring)
    error = _ex(ex, _X_ERROR)
    leaks = getattr(ex, "leaks", 0)
    _put(b, b'{"bytes_in":', 12)
    _int(b, int(_ex(ex, _X_BYTES_IN) or 0))
    _put(b, b',"bytes_out":', 13)
    _int(b, int(_ex(ex, _X_BYTES_OUT) or 0))
    _put(b, b',"decision":', 12)
    _decision(b, d)
    _put(b, b',"decision_id":', 15)
    _value(b, _code(getattr(d, "decision_id", None)))
    _put(b, b',"endpoint":', 12)
    _value(b, _code(_ex(ex, _X_ENDPOINT)))
    if error is not None:
        _put(b, b',"error":', 9)
        _value(b, _clean(error, ring))
    _put(b, b',"findings":', 12)
    _findings(b, ex, ring)
    if leaks:
        _put(b, b',"leaks":', 9)
        _int(b, int(leaks))
    _put(b, b',"level":', 9)
    _value(b, _code(_ex(ex, _X_LEVEL)))
    _put(b, b',"model":', 9)
    _value(b, _clean(_ex(ex, _X_MODEL), ring))
    _put(b, b',"outcome":', 11)
    _value(b, outcome)
    _put(b, b',"prev":"', 9)
    _put(b, head, 64)
    _put(b, b'",', 2)
    _put(b, b'"principal":', 12)
    _principal(b, _ex(ex, _X_PRINCIPAL), ring)
    _put(b, b',"request_id":', 14)
    _value(b, rid)
    _put(b, b',"seq":', 7)
    _cint(b, seq)
    _put(b, b',"ts":"', 7)
    _put(b, ts, 24)
    _put(b, b'",', 2)
    _put(b, b'"upstream":', 11)
    _upstream(b, ex)
    _put(b, b"}", 1)
    return 0


# --------------------------------------------------------------------------------------- the chain

cdef long long _ts_sec = -1  # the whole second of the last timestamp, and its text (chain.iso_ts's)
cdef char _ts_text[24]


cdef int _iso_ts(double t, char* out) except -1:
    """``chain.iso_ts(t)`` into ``out`` (24 bytes): the reference's rounding, its text per second."""
    global _ts_sec
    cdef long long sec = <long long>t
    cdef long long us = <long long>nearbyint((t - <double>sec) * 1e6)  # round half to even, as round()
    cdef bytes text
    if us >= 1000000:
        sec, us = sec + 1, us - 1000000
    if sec != _ts_sec:
        text = _chain.iso_ts(float(sec)).encode()  # once a second: the reference formats the date
        if len(text) != 24:
            raise Unusual()
        memcpy(_ts_text, PyBytes_AS_STRING(text), 24)
        _ts_sec = sec
    memcpy(out, _ts_text, 19)
    us //= 1000
    out[19], out[20], out[21], out[22], out[23] = b'.', <char>(48 + us // 100), <char>(48 + us // 10 % 10), \
        <char>(48 + us % 10), b'Z'
    return 0


def chain(list items, Py_ssize_t i, bytearray out, long long seq, str head, Py_ssize_t room):
    """Chain ``items[i:]`` (``(time, Exchange, ring)`` from ``AuditLog.record``) from ``seq`` after
    ``head``: each record's stored line, as ``build_record`` + ``chain.seal`` write it, appended to
    ``out``. Stops after ``room`` records (a checkpoint is due), at the end, or before an item that
    is not such a triple or that the encoder leaves to the reference (the caller seals that one and
    calls again). Returns ``(next i, next seq, head)``: one call and one append per group, and no
    Python object per record."""
    cdef Buf b
    cdef Py_ssize_t n = len(items), start, done = 0, at
    cdef char h[64]
    cdef char ts[24]
    cdef uint32_t st[8]
    cdef uint8_t d[32]
    cdef const char* hp
    cdef Py_ssize_t hn
    cdef int j
    if not PyUnicode_IS_ASCII(head):
        raise ValueError("chain head is not 64 hex")
    hp = PyUnicode_AsUTF8AndSize(head, &hn)
    if hn != 64:
        raise ValueError("chain head is not 64 hex")
    memcpy(h, hp, 64)
    b.cap = 1200 * min(max(n - i, 1), 64)
    b.p = <char*>malloc(b.cap)
    if b.p == NULL:
        raise MemoryError()
    b.n = 0
    try:
        while i < n and done < room:
            item = items[i]
            if type(item) is not tuple or len(<tuple>item) != 3:
                break
            t, ex, ring = <tuple>item
            if ring is None or type(t) is not float:
                break
            start = b.n
            try:
                _iso_ts(t, ts)
                _record(&b, ex, ring, h, seq, ts)
            except Exception:  # the reference decides (and logs) what this record says
                b.n = start
                break
            memcpy(st, _IV, 32)
            _finish(st, <const uint8_t*>b.p + start, b.n - start, d, 0)
            b.n -= 1  # the closing brace: "hash" goes last
            for j in range(32):
                h[2 * j], h[2 * j + 1] = _HEX[d[j] >> 4], _HEX[d[j] & 15]
            _put(&b, b',"hash":"', 9)
            _put(&b, h, 64)
            _put(&b, b'"}\n', 3)
            seq += 1
            i += 1
            done += 1
        if b.n:
            at = len(out)
            PyByteArray_Resize(out, at + b.n)
            memcpy(PyByteArray_AS_STRING(out) + at, b.p, b.n)
    finally:
        free(b.p)
    return i, seq, PyUnicode_FromStringAndSize(h, 64)


def sha256_hex(data, bint portable=False):
    """Hex SHA-256 of ``data`` (bytes) as ``chain`` computes it: SHA-NI where the CPU has it, or with
    ``portable`` the C rounds (for tests against hashlib)."""
    global _use_ni
    cdef uint32_t st[8]
    cdef uint8_t d[32]
    cdef bytes raw = bytes(data)
    cdef bint was = _use_ni
    if portable:
        _use_ni = False
    try:
        memcpy(st, _IV, 32)
        _finish(st, <const uint8_t*>PyBytes_AS_STRING(raw), len(raw), d, 0)
    finally:
        _use_ni = was
    return PyBytes_FromStringAndSize(<char*>d, 32).hex()


SHA_NI = bool(_use_ni)
"""Whether this CPU's SHA extensions hash the chain and the fingerprints."""
