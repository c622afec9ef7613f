# cython: language_level=3
"""Compiled inspection core: the same function as ``gateway.inspect._scan_py.scan``, faster."""

# Check-digit validators in C integer arithmetic (REFERENCE.md section 1).
#
# Every validator takes the *compact* value: ASCII, upper case, separators removed, exactly as the
# scanner builds it in its scratch buffer, and its length. They never allocate and never raise.

ctypedef const unsigned char* cstr

cdef inline bint _all_digits(cstr s, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        if s[i] < 48 or s[i] > 57:
            return False
    return True

cdef inline bint _all_same(cstr s, int n) noexcept nogil:
    cdef int i
    for i in range(1, n):
        if s[i] != s[0]:
            return False
    return True

cdef inline int _d(cstr s, int i) noexcept nogil:
    return s[i] - 48

cdef inline bint _is_upper(unsigned char c) noexcept nogil:
    return 65 <= c <= 90

cdef inline bint _is_alnum_up(unsigned char c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 90)

# digit -> its Luhn double (2d, less 9 when above 9): a load instead of a branch the predictor
# misses on about half the doubled digits
cdef int _LUHN2[10]
_LUHN2[:] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]

cdef bint v_luhn(cstr s, int n) noexcept nogil:
    """Luhn over all n digits (the last one is the check digit)."""
    cdef int i, total = 0
    if n < 2 or not _all_digits(s, n):
        return False
    # from the right: the check digit and every second one as they are, the others doubled
    i = n - 1
    while i > 0:
        total += (s[i] - 48) + _LUHN2[s[i - 1] - 48]
        i -= 2
    if i == 0:
        total += s[0] - 48
    return total % 10 == 0

cdef bint v_cpf(cstr s, int n) noexcept nogil:
    cdef int i, t, d1, d2
    if n != 11 or not _all_digits(s, n) or _all_same(s, n):
        return False
    t = 0
    for i in range(9):
        t += _d(s, i) * (10 - i)
    d1 = (11 - t % 11) % 11 % 10
    t = 0
    for i in range(9):
        t += _d(s, i) * (11 - i)
    t += 2 * d1
    d2 = (11 - t % 11) % 11 % 10
    return d1 == _d(s, 9) and d2 == _d(s, 10)

cdef int _CNPJ_W1[12]
cdef int _CNPJ_W2[13]
_CNPJ_W1[:] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_CNPJ_W2[:] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]

cdef bint v_cnpj(cstr s, int n) noexcept nogil:
    """Numeric and alphanumeric (July 2026) CNPJ: value = ord(c) - 48, check digits numeric."""
    cdef int i, t, d1, d2
    if n != 14:
        return False
    for i in range(12):
        if not _is_alnum_up(s[i]):
            return False
    if not _all_digits(s + 12, 2):
        return False
    if _all_digits(s, 12):
        for i in range(12):
            if s[i] != 48:
                break
        else:
            return False
        if _all_same(s, 14):
            return False
    t = 0
    for i in range(12):
        t += (s[i] - 48) * _CNPJ_W1[i]
    d1 = (11 - t % 11) % 11 % 10
    t = d1 * _CNPJ_W2[12]
    for i in range(12):
        t += (s[i] - 48) * _CNPJ_W2[i]
    d2 = (11 - t % 11) % 11 % 10
    return d1 == _d(s, 12) and d2 == _d(s, 13)

cdef bint v_cns(cstr s, int n) noexcept nogil:
    cdef int i, t = 0
    cdef unsigned char f
    if n != 15 or not _all_digits(s, n):
        return False
    f = s[0]
    if not (f == 49 or f == 50 or f == 55 or f == 56 or f == 57):
        return False
    if f == 49 or f == 50:
        # definitive card: a PIS, then 000 (or 001 when the plain check would be 10) and a digit
        for i in range(11):
            t += _d(s, i) * (15 - i)
        if t % 11 == 1:
            if not (s[11] == 48 and s[12] == 48 and s[13] == 49):
                return False
        elif not (s[11] == 48 and s[12] == 48 and s[13] == 48):
            return False
        t = 0
    for i in range(15):
        t += _d(s, i) * (15 - i)
    return t % 11 == 0

cdef int _PIS_W[10]
_PIS_W[:] = [3, 2, 9, 8, 7, 6, 5, 4, 3, 2]

cdef bint v_pis(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, r
    if n != 11 or not _all_digits(s, n) or _all_same(s, n):
        return False
    for i in range(10):
        t += _d(s, i) * _PIS_W[i]
    r = t % 11
    return (0 if r < 2 else 11 - r) == _d(s, 10)

cdef bint v_cnh(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, d1, d2, dsc = 0
    if n != 11 or not _all_digits(s, n) or _all_same(s, n):
        return False
    for i in range(9):
        t += _d(s, i) * (9 - i)
    d1 = t % 11
    if d1 >= 10:
        d1 = 0
        dsc = 2
    t = 0
    for i in range(9):
        t += _d(s, i) * (i + 1)
    d2 = t % 11 - dsc
    if d2 < 0:
        d2 += 11
    if d2 >= 10:
        d2 = 0
    return d1 == _d(s, 9) and d2 == _d(s, 10)

cdef bint v_titulo(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, uf, d1, d2
    if n != 12 or not _all_digits(s, n):
        return False
    uf = _d(s, 8) * 10 + _d(s, 9)
    if uf < 1 or uf > 28:
        return False
    for i in range(8):
        t += _d(s, i) * (i + 2)
    d1 = t % 11
    if d1 == 10:
        d1 = 0
    d2 = (_d(s, 8) * 7 + _d(s, 9) * 8 + d1 * 9) % 11
    if d2 == 10:
        d2 = 0
    return d1 == _d(s, 10) and d2 == _d(s, 11)

# CURP / RFC alphabets: value of a character, -1 when not in the alphabet. Ñ is not ASCII: the
# scanner maps it to byte 0xD1 (its Latin-1 code) in the compact buffer.
cdef int _CURP_VAL[256]
cdef int _RFC_VAL[256]

def _init_alphabets():
    cdef int i
    for i in range(256):
        _CURP_VAL[i] = -1
        _RFC_VAL[i] = -1
    for i, c in enumerate("0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"):
        _CURP_VAL[ord(c)] = i
    for i, c in enumerate("0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ \xd1"):
        _RFC_VAL[ord(c)] = i

_init_alphabets()

cdef bint _valid_date(int yy, int mm, int dd, int century) noexcept nogil:
    cdef int year = century + yy
    cdef int mdays
    if mm < 1 or mm > 12 or dd < 1:
        return False
    if mm == 2:
        mdays = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    elif mm == 4 or mm == 6 or mm == 9 or mm == 11:
        mdays = 30
    else:
        mdays = 31
    return dd <= mdays

# Two-letter codes of the CURP birth states, as a 26x26 bitmap (from validators.CURP_STATES).
cdef unsigned char _CURP_STATE[26 * 26]

cdef bint v_curp(cstr s, int n) noexcept nogil:
    """18 chars: [A-Z]{4}\\d{6}[HM]<state>[A-Z]{3}[0-9A-Z]\\d with a valid date and check digit."""
    cdef int i, t = 0, century
    if n != 18:
        return False
    for i in range(4):
        if not _is_upper(s[i]):
            return False
    if not _all_digits(s + 4, 6):
        return False
    if s[10] != 72 and s[10] != 77:  # H, M
        return False
    for i in range(11, 16):
        if not _is_upper(s[i]):
            return False
    if not _CURP_STATE[(s[11] - 65) * 26 + s[12] - 65]:
        return False
    if not _is_alnum_up(s[16]) or not (48 <= s[17] <= 57):
        return False
    century = 1900 if s[16] <= 57 else 2000
    if not _valid_date(_d(s, 4) * 10 + _d(s, 5), _d(s, 6) * 10 + _d(s, 7),
                       _d(s, 8) * 10 + _d(s, 9), century):
        return False
    for i in range(17):
        t += _CURP_VAL[s[i]] * (18 - i)
    return (10 - t % 10) % 10 == _d(s, 17)

cdef bint v_rfc(cstr s, int n) noexcept nogil:
    """Persona física (13) or moral (12) with homoclave; date and check digit validated."""
    cdef int i, t = 0, pre, pad
    cdef const char* alpha = b"0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ \xd1"
    if n == 13:
        pre = 4
    elif n == 12:
        pre = 3
    else:
        return False
    for i in range(pre):
        if not (_is_upper(s[i]) or s[i] == 38 or s[i] == 0xD1):
            return False
    if not _all_digits(s + pre, 6):
        return False
    for i in range(pre + 6, n):
        if not _is_alnum_up(s[i]):
            return False
    # stdnum: any century; accept 1900 or 2000 leap rules identically except 00-02-29
    if not _valid_date(_d(s, pre) * 10 + _d(s, pre + 1), _d(s, pre + 2) * 10 + _d(s, pre + 3),
                       _d(s, pre + 4) * 10 + _d(s, pre + 5), 2000):
        return False
    pad = 13 - n  # left-pad with spaces to 12 characters before the check digit
    for i in range(n - 1):
        t += _RFC_VAL[s[i]] * (13 - (i + pad))
    # the padding spaces have value 37 in the alphabet
    for i in range(pad):
        t += 37 * (13 - i)
    return <unsigned char>alpha[(11 - t % 11 + 11) % 11] == s[n - 1]

cdef bint v_clabe(cstr s, int n) noexcept nogil:
    cdef int i, t = 0
    cdef int w[3]
    w[0] = 3; w[1] = 7; w[2] = 1
    if n != 18 or not _all_digits(s, n):
        return False
    for i in range(17):
        t += (_d(s, i) * w[i % 3]) % 10
    return (10 - t % 10) % 10 == _d(s, 17)

cdef int _CUIT_W[10]
_CUIT_W[:] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]

cdef bint v_cuit(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, p, dv
    if n != 11 or not _all_digits(s, n):
        return False
    p = _d(s, 0) * 10 + _d(s, 1)
    if not (p == 20 or p == 23 or p == 24 or p == 27 or p == 30 or p == 33 or p == 34):
        return False
    for i in range(10):
        t += _d(s, i) * _CUIT_W[i]
    dv = 11 - t % 11
    if dv == 11:
        dv = 0
    elif dv == 10:
        dv = 9
    return dv == _d(s, 10)

cdef bint v_cl_rut(cstr s, int n) noexcept nogil:
    """Body of 7-8 digits and a check character 0-9 or K."""
    cdef int i, t = 0, w = 2, r
    cdef unsigned char dv
    if n < 8 or n > 9 or not _all_digits(s, n - 1):
        return False
    i = n - 2
    while i >= 0:
        t += _d(s, i) * w
        w = 2 if w == 7 else w + 1
        i -= 1
    r = 11 - t % 11
    if r == 11:
        dv = 48
    elif r == 10:
        dv = 75  # K
    else:
        dv = 48 + r
    return s[n - 1] == dv

cdef int _NIT_W[15]
_NIT_W[:] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71]

cdef bint v_co_nit(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, r
    if n < 8 or n > 16 or not _all_digits(s, n):
        return False
    for i in range(n - 1):
        t += _d(s, n - 2 - i) * _NIT_W[i]
    r = t % 11
    return (r if r < 2 else 11 - r) == _d(s, n - 1)

cdef int _PE_W[8]
_PE_W[:] = [3, 2, 7, 6, 5, 4, 3, 2]

cdef bint v_pe_dni(cstr s, int n) noexcept nogil:
    """8 digits, optionally followed by the check character (digit or letter)."""
    cdef int i, t = 0, c
    cdef const char* num = b"65432110987"
    cdef const char* let = b"KJIHGFEDCBA"
    if (n != 8 and n != 9) or not _all_digits(s, 8) or _all_same(s, 8):
        return False
    if n == 8:
        return True
    for i in range(8):
        t += _d(s, i) * _PE_W[i]
    c = t % 11
    return s[8] == <unsigned char>num[c] or s[8] == <unsigned char>let[c]

cdef bint v_pe_ruc(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, p
    if n != 11 or not _all_digits(s, n):
        return False
    p = _d(s, 0) * 10 + _d(s, 1)
    if not (p == 10 or p == 15 or p == 17 or p == 20):
        return False
    for i in range(10):
        t += _d(s, i) * _CUIT_W[i]
    return (11 - t % 11) % 10 == _d(s, 10)

cdef bint _ec_province(cstr s) noexcept nogil:
    cdef int p = _d(s, 0) * 10 + _d(s, 1)
    return (1 <= p <= 24) or p == 30 or p == 50

cdef bint _ec_ci_sum(cstr s) noexcept nogil:
    cdef int i, x, t = 0
    for i in range(10):
        x = _d(s, i) * (2 if i % 2 == 0 else 1)
        if x > 9:
            x -= 9
        t += x
    return t % 10 == 0

cdef bint v_ec_ci(cstr s, int n) noexcept nogil:
    if n != 10 or not _all_digits(s, n):
        return False
    if not _ec_province(s) or _d(s, 2) > 6:
        return False
    return _ec_ci_sum(s)

cdef bint _ec_mod11(cstr s, const int* w, int k) noexcept nogil:
    cdef int i, t = 0
    for i in range(k):
        t += _d(s, i) * w[i]
    return t % 11 == 0

cdef int _EC_PUB_W[9]
cdef int _EC_JUR_W[10]
_EC_PUB_W[:] = [3, 2, 7, 6, 5, 4, 3, 2, 1]
_EC_JUR_W[:] = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1]

cdef bint _ec_natural(cstr s) noexcept nogil:
    if s[10] == 48 and s[11] == 48 and s[12] == 48:
        return False
    return _d(s, 2) <= 6 and _ec_ci_sum(s)

cdef bint _ec_public(cstr s) noexcept nogil:
    if s[9] == 48 and s[10] == 48 and s[11] == 48 and s[12] == 48:
        return False
    return _ec_mod11(s, _EC_PUB_W, 9)

cdef bint _ec_juridical(cstr s) noexcept nogil:
    if s[10] == 48 and s[11] == 48 and s[12] == 48:
        return False
    return _ec_mod11(s, _EC_JUR_W, 10)

cdef bint v_ec_ruc(cstr s, int n) noexcept nogil:
    cdef int t
    if n != 13 or not _all_digits(s, n) or not _ec_province(s):
        return False
    t = _d(s, 2)
    if t < 6:
        return _ec_natural(s)
    if t == 6:
        return _ec_public(s) or _ec_natural(s)
    if t == 9:
        return _ec_public(s) or _ec_juridical(s)
    return False

cdef int _UY_CI_W[7]
_UY_CI_W[:] = [2, 9, 8, 7, 6, 3, 4]

cdef bint v_uy_ci(cstr s, int n) noexcept nogil:
    """7 or 8 digits: the body (padded to 7 on the left) and the check digit."""
    cdef int i, t = 0, off
    if (n != 7 and n != 8) or not _all_digits(s, n) or _all_same(s, n):
        return False
    off = 8 - n  # body digits missing on the left
    for i in range(n - 1):
        t += _d(s, i) * _UY_CI_W[i + off]
    return (10 - t % 10) % 10 == _d(s, n - 1)

cdef int _UY_RUT_W[11]
_UY_RUT_W[:] = [4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]

cdef bint v_uy_rut(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, p
    if n != 12 or not _all_digits(s, n):
        return False
    p = _d(s, 0) * 10 + _d(s, 1)
    if p < 1 or p > 22:
        return False
    for i in range(2, 8):
        if s[i] != 48:
            break
    else:
        return False
    if not (s[8] == 48 and s[9] == 48 and s[10] == 49):
        return False
    for i in range(11):
        t += _d(s, i) * _UY_RUT_W[i]
    return (11 - t % 11) % 11 == _d(s, 11)

cdef bint v_py_ruc(cstr s, int n) noexcept nogil:
    """Up to 9 digits including the check digit (weights 2,3,4,... from the right)."""
    cdef int i, t = 0
    if n < 2 or n > 9 or not _all_digits(s, n) or _all_same(s, n):
        return False
    for i in range(n - 1):
        t += _d(s, n - 2 - i) * (i + 2)
    return ((11 - t % 11) % 11) % 10 == _d(s, n - 1)

cdef bint v_ve_rif(cstr s, int n) noexcept nogil:
    cdef int i, t
    cdef const char* dv = b"00987654321"
    if n != 10 or not _all_digits(s + 1, 9):
        return False
    if s[0] == 86:
        t = 4    # V
    elif s[0] == 69:
        t = 8    # E
    elif s[0] == 74:
        t = 12   # J
    elif s[0] == 80:
        t = 16   # P
    elif s[0] == 71:
        t = 20   # G
    else:
        return False
    for i in range(8):
        t += _d(s, i + 1) * _PE_W[i]
    return <unsigned char>dv[t % 11] == s[9]

# Municipalities per department of Guatemala (RENAP), departments 01-22.
cdef int _GT_MUNIS[22]
_GT_MUNIS[:] = [17, 8, 16, 16, 13, 14, 19, 8, 24, 21, 9, 30, 32, 21, 8, 17, 14, 5, 11, 11, 7, 17]

cdef bint v_gt_cui(cstr s, int n) noexcept nogil:
    cdef int i, t = 0, dept, muni
    if n != 13 or not _all_digits(s, n):
        return False
    dept = _d(s, 9) * 10 + _d(s, 10)
    muni = _d(s, 11) * 10 + _d(s, 12)
    if dept < 1 or dept > 22 or muni < 1 or muni > _GT_MUNIS[dept - 1]:
        return False
    for i in range(8):
        t += _d(s, i) * (i + 2)
    return t % 11 == _d(s, 8)

cdef bint v_do_cedula(cstr s, int n) noexcept nogil:
    return n == 11 and v_luhn(s, n) and not _all_same(s, n)

cdef bint v_ssn(cstr s, int n) noexcept nogil:
    """Area not 000/666/9xx, group not 00, serial not 0000, not a famous published number."""
    cdef int area, group, serial
    if n != 9 or not _all_digits(s, n):
        return False
    area = _d(s, 0) * 100 + _d(s, 1) * 10 + _d(s, 2)
    group = _d(s, 3) * 10 + _d(s, 4)
    serial = _d(s, 5) * 1000 + _d(s, 6) * 100 + _d(s, 7) * 10 + _d(s, 8)
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    if (area == 78 and group == 5 and serial == 1120) or \
       (area == 457 and group == 55 and serial == 5462) or \
       (area == 219 and group == 9 and serial == 9999):
        return False
    return True

cdef bint v_itin(cstr s, int n) noexcept nogil:
    """9XX-G-XXXX with group 50-65, 70-88, 90-92 or 94-99 (IRS Pub 1915)."""
    cdef int g
    if n != 9 or not _all_digits(s, n) or s[0] != 57:
        return False
    g = _d(s, 3) * 10 + _d(s, 4)
    return (50 <= g <= 65) or (70 <= g <= 88) or (90 <= g <= 92) or (94 <= g <= 99)

cdef bint v_sin(cstr s, int n) noexcept nogil:
    if n != 9 or not _all_digits(s, n) or s[0] == 48 or s[0] == 56:
        return False
    return v_luhn(s, n)

# Card issuer ranges (detectors.CARD_IIN_RANGES): lo, hi, prefix width, bitmask of lengths.
DEF MAX_IIN = 64
DEF MAX_IIN_W = 8   # widest issuer prefix (digits)
cdef int _IIN_N = 0
cdef int _IIN_LO[MAX_IIN]
cdef int _IIN_HI[MAX_IIN]
cdef int _IIN_W[MAX_IIN]
cdef unsigned int _IIN_LEN[MAX_IIN]

cdef bint v_card(cstr s, int n) noexcept nogil:
    """Payment card: 13-19 digits in an issuer range of CARD_IIN_RANGES, Luhn."""
    cdef int k, i, p
    cdef int pre[MAX_IIN_W + 1]   # pre[w]: the number the first w digits make
    if n < 13 or n > 19 or not _all_digits(s, n):
        return False
    # the prefixes once, not once per range (n >= 13 > MAX_IIN_W digits are there)
    p = 0
    pre[0] = 0
    for i in range(MAX_IIN_W):
        p = p * 10 + _d(s, i)
        pre[i + 1] = p
    for k in range(_IIN_N):
        if (_IIN_LEN[k] >> n) & 1 and _IIN_LO[k] <= pre[_IIN_W[k]] <= _IIN_HI[k]:
            return v_luhn(s, n)
    return False

# IBAN length per country (detectors.IBAN_LENGTHS) as a 26x26 table; 0 = not an IBAN country.
cdef unsigned char _IBAN_LEN[26 * 26]

cdef bint v_iban(cstr s, int n) noexcept nogil:
    """IBAN: a country of IBAN_LENGTHS with its exact length, 2 check digits, mod 97 = 1."""
    cdef int i, r = 0, c, k
    if n < 4 or not (_is_upper(s[0]) and _is_upper(s[1])):
        return False
    if _IBAN_LEN[(s[0] - 65) * 26 + s[1] - 65] != n or not _all_digits(s + 2, 2):
        return False
    for k in range(n):
        i = (k + 4) % n
        c = s[i]
        if 48 <= c <= 57:
            r = (r * 10 + c - 48) % 97
        elif 65 <= c <= 90:
            r = (r * 100 + c - 55) % 97
        else:
            return False
    return r == 1


cdef bint v_rg(cstr s, int n) noexcept nogil:
    """BR RG (context-only): 7-9 digits, the last may be X; not all the same."""
    if n < 7 or n > 9 or not _all_digits(s, n - 1):
        return False
    if not ((48 <= s[n - 1] <= 57) or s[n - 1] == 88):
        return False
    return not _all_same(s, n)

cdef bint v_ine(cstr s, int n) noexcept nogil:
    """MX clave de elector (context-only): [A-Z]{6}\\d{8}[HM]\\d{3}."""
    cdef int i
    if n != 18:
        return False
    for i in range(6):
        if not _is_upper(s[i]):
            return False
    return _all_digits(s + 6, 8) and (s[14] == 72 or s[14] == 77) and _all_digits(s + 15, 3)

cdef bint v_digits_id(cstr s, int n) noexcept nogil:
    return n > 0 and _all_digits(s, n) and not _all_same(s, n)

cdef bint v_ve_cedula(cstr s, int n) noexcept nogil:
    if n > 0 and (s[0] == 86 or s[0] == 69):
        s += 1
        n -= 1
    return 6 <= n <= 8 and v_digits_id(s, n)

cdef bint v_cr_cedula(cstr s, int n) noexcept nogil:
    if not v_digits_id(s, n):
        return False
    if n == 10:
        return s[0] == 48 and s[1] != 48
    return n == 9 and s[0] != 48

cdef bint _pa_rest(cstr s, int n) noexcept nogil:
    return 2 <= n <= 10 and v_digits_id(s, n)

cdef bint v_pa_cedula(cstr s, int n) noexcept nogil:
    """PA cédula (context-only), compact: PE, E, N or a province 1-13 (+ AV/PI), then 2-10 digits."""
    cdef int i, p, k
    if n >= 2 and s[0] == 80 and s[1] == 69:
        return _pa_rest(s + 2, n - 2)
    if n >= 1 and (s[0] == 69 or s[0] == 78):
        return _pa_rest(s + 1, n - 1)
    for i in range(1, 3):
        if n < i or not _all_digits(s, i):
            continue
        p = _d(s, 0) if i == 1 else _d(s, 0) * 10 + _d(s, 1)
        if p < 1 or p > 13:
            continue
        k = i
        if n >= i + 2 and ((s[i] == 65 and s[i + 1] == 86) or (s[i] == 80 and s[i + 1] == 73)):
            k = i + 2
        if _pa_rest(s + k, n - k):
            return True
    return False

cdef bint v_cu_ni(cstr s, int n) noexcept nogil:
    if n != 11 or not _all_digits(s, n):
        return False
    return _valid_date(_d(s, 0) * 10 + _d(s, 1), _d(s, 2) * 10 + _d(s, 3),
                       _d(s, 4) * 10 + _d(s, 5), 2000)

# Valid IRS campus prefixes of an EIN, as a 100-entry table (filled from the reference at import).
cdef unsigned char _EIN_PREFIX[100]

cdef bint v_ein(cstr s, int n) noexcept nogil:
    if n != 9 or not _all_digits(s, n):
        return False
    return _EIN_PREFIX[_d(s, 0) * 10 + _d(s, 1)] and not _all_same(s + 2, 7)


def _init_validator_tables():
    """C tables from the reference's data, so both implementations share one source of truth."""
    from gateway.inspect import validators as V
    cdef int i
    for i in range(26 * 26):
        _CURP_STATE[i] = 0
    for code in V.CURP_STATES:
        _CURP_STATE[(ord(code[0]) - 65) * 26 + ord(code[1]) - 65] = 1
    for i in range(100):
        _EIN_PREFIX[i] = 0
    for p in V.EIN_PREFIXES:
        _EIN_PREFIX[int(p)] = 1
    from gateway.inspect import detectors as D
    global _IIN_N
    assert len(D.CARD_IIN_RANGES) <= MAX_IIN
    _IIN_N = 0
    for lo, hi, width, lengths in D.CARD_IIN_RANGES:
        assert 1 <= width <= MAX_IIN_W and min(lengths) > MAX_IIN_W
        _IIN_LO[_IIN_N] = lo
        _IIN_HI[_IIN_N] = hi
        _IIN_W[_IIN_N] = width
        _IIN_LEN[_IIN_N] = sum(1 << L for L in set(lengths))
        _IIN_N += 1
    for i in range(26 * 26):
        _IBAN_LEN[i] = 0
    for cc, L in D.IBAN_LENGTHS.items():
        _IBAN_LEN[(ord(cc[0]) - 65) * 26 + ord(cc[1]) - 65] = L

_init_validator_tables()

ctypedef bint (*validator_t)(cstr, int) noexcept nogil

# name -> C validator; the Python wrappers below and the scanner's detector table use these names.
cdef validator_t _validator_by_name(str name):
    if name == "luhn": return v_luhn
    if name == "cpf": return v_cpf
    if name == "cnpj": return v_cnpj
    if name == "cns": return v_cns
    if name == "pis": return v_pis
    if name == "cnh": return v_cnh
    if name == "titulo": return v_titulo
    if name == "curp": return v_curp
    if name == "rfc": return v_rfc
    if name == "nss": return v_luhn_11
    if name == "clabe": return v_clabe
    if name == "cuit": return v_cuit
    if name == "cl_rut": return v_cl_rut
    if name == "co_nit": return v_co_nit
    if name == "pe_dni": return v_pe_dni
    if name == "pe_ruc": return v_pe_ruc
    if name == "ec_ci": return v_ec_ci
    if name == "ec_ruc": return v_ec_ruc
    if name == "uy_ci": return v_uy_ci
    if name == "uy_rut": return v_uy_rut
    if name == "py_ruc": return v_py_ruc
    if name == "ve_rif": return v_ve_rif
    if name == "gt_cui": return v_gt_cui
    if name == "do_cedula": return v_do_cedula
    if name == "ssn": return v_ssn
    if name == "itin": return v_itin
    if name == "sin": return v_sin
    if name == "card": return v_card
    if name == "iban": return v_iban
    if name == "rg": return v_rg
    if name == "ine": return v_ine
    if name == "digits_id": return v_digits_id
    if name == "ve_cedula": return v_ve_cedula
    if name == "cr_cedula": return v_cr_cedula
    if name == "pa_cedula": return v_pa_cedula
    if name == "cu_ni": return v_cu_ni
    if name == "ein": return v_ein
    return NULL

cdef bint v_luhn_11(cstr s, int n) noexcept nogil:
    return n == 11 and v_luhn(s, n)

VALIDATOR_NAMES = ("luhn", "cpf", "cnpj", "cns", "pis", "cnh", "titulo", "curp", "rfc", "nss",
                   "clabe", "cuit", "cl_rut", "co_nit", "pe_dni", "pe_ruc", "ec_ci", "ec_ruc",
                   "uy_ci", "uy_rut", "py_ruc", "ve_rif", "gt_cui", "do_cedula", "ssn", "itin",
                   "sin", "card", "iban", "rg", "ine", "digits_id", "ve_cedula", "cr_cedula",
                   "pa_cedula", "cu_ni", "ein")


def check(str name, str value):
    """Run the C validator ``name`` on a compact value (upper-case ASCII, no separators; Ñ allowed).

    Returns False for anything that is not a valid value of that kind; raises KeyError for an
    unknown validator name.
    """
    cdef validator_t f = _validator_by_name(name)
    if f == NULL:
        raise KeyError(name)
    cdef bytes b
    try:
        b = value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    if len(b) > 64:
        return False
    return bool(f(<cstr><const char*>b, <int>len(b)))



# ---------------------------------------------------------------------------- normalization
# Mirrors gateway.inspect.normalize.normalize exactly: drop INVISIBLE, fold (FOLD: dashes, line
# breaks, NFKC-to-one-ASCII-character), then homoglyphs in digit runs. The tables come from that
# module at import.

from cpython.unicode cimport PyUnicode_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc
from libc.string cimport memcpy

cdef extern from "Python.h":
    ctypedef uint8_t Py_UCS1
    ctypedef uint16_t Py_UCS2
    bint Py_UNICODE_ISALPHA(Py_UCS4 ch) nogil
    object PyUnicode_FromKindAndData(int kind, const void *buffer, Py_ssize_t size)

ctypedef fused uchar_t:
    Py_UCS1
    Py_UCS2
    uint32_t

DEF FOLD_LIMIT = 0x20000
DEF DROP = 0xFF
DEF DROP_LO = 0xE0000   # tag characters and variation selectors: invisible, above the table
DEF DROP_HI = 0xE0FFF

# code point -> 0 (kept), DROP (invisible: dropped) or the ASCII character it reads as.
cdef uint8_t _FOLD[FOLD_LIMIT]

def _init_fold():
    from gateway.inspect import normalize as N
    cdef int i
    for i in range(FOLD_LIMIT):
        _FOLD[i] = 0
    for cp, c in N.FOLD.items():
        if cp < FOLD_LIMIT:
            _FOLD[cp] = ord(c)
    for c in N.INVISIBLE:
        if ord(c) < FOLD_LIMIT:
            _FOLD[ord(c)] = DROP
        else:  # above the table only the tag characters and variation selectors _normalize drops
            assert DROP_LO <= ord(c) <= DROP_HI, "invisible character above the fold table: update the core"
    assert N.HOMOGLYPHS == {"O": "0", "l": "1", "I": "1"}, "homoglyph table changed: update the core"

_init_fold()


cdef inline bint _is_alpha(uint32_t c) noexcept nogil:
    if c < 128:
        return (65 <= c <= 90) or (97 <= c <= 122)
    return Py_UNICODE_ISALPHA(c)


cdef inline bint _homo_run_char(uint32_t c) noexcept nogil:
    return (48 <= c <= 57) or c == 79 or c == 108 or c == 73   # 0-9 O l I


cdef Py_ssize_t _normalize(const uchar_t* src, Py_ssize_t n, uchar_t* out,
                           int32_t** offsets_p, uchar_t** plain) noexcept nogil:
    """Write the normalized text to ``out`` (n entries) and return its length m.

    ``offsets_p[0]`` gets a malloc'ed map of each normalized character to its original index (plus
    ``[m] = n``) only when a character was dropped; it stays NULL when the map is the identity.
    When the homoglyph step changes anything, ``plain[0]`` gets a malloc'ed copy of the text
    before it (the reference's ``plain``); otherwise it stays NULL. Returns -1 without memory."""
    cdef Py_ssize_t i, m = 0, j, k
    cdef uint32_t c
    cdef uint8_t f
    cdef bint digit, homo
    cdef int32_t* offsets = NULL
    for i in range(n):
        c = src[i]
        if c >= 0x80:
            if c < FOLD_LIMIT:
                f = _FOLD[c]
            else:
                f = DROP if DROP_LO <= c <= DROP_HI else 0
            if f == DROP:
                if offsets == NULL:
                    offsets = <int32_t*>malloc((n + 1) * sizeof(int32_t))
                    if offsets == NULL:
                        return -1
                    offsets_p[0] = offsets
                    for k in range(m):
                        offsets[k] = <int32_t>k
                continue
            if f:
                c = f
        out[m] = <uchar_t>c
        if offsets != NULL:
            offsets[m] = <int32_t>i
        m += 1
    if offsets != NULL:
        offsets[m] = <int32_t>n
    # homoglyphs: maximal runs of 0-9 O l I with an ASCII digit and a homoglyph, not touching letters
    i = 0
    while i < m:
        if not _homo_run_char(out[i]):
            i += 1
            continue
        j = i
        digit = homo = False
        while j < m and _homo_run_char(out[j]):
            if out[j] <= 57:
                digit = True
            else:
                homo = True
            j += 1
        if digit and homo and (i == 0 or not _is_alpha(out[i - 1])) and \
                (j == m or not _is_alpha(out[j])):
            if plain != NULL and plain[0] == NULL:
                plain[0] = <uchar_t*>malloc((m + 1) * sizeof(uchar_t))
                if plain[0] == NULL:
                    return -1
                memcpy(plain[0], out, m * sizeof(uchar_t))
            for k in range(i, j):
                if out[k] == 79:
                    out[k] = 48
                elif out[k] > 57:
                    out[k] = 49
        i = j
    return m


# ---- 8 bytes at a time (SWAR): a mask has bit 7 of byte k set when byte k has the property.
# Loads are little-endian on every machine, so byte k of the text is byte k of the word.

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint64_t sob_load8(const unsigned char* p) {
        uint64_t x;
        memcpy(&x, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
    #endif
        return x;
    }
    static inline uint64_t sob_load_tail(const unsigned char* p, Py_ssize_t k) {
        uint64_t x = 0;
        for (Py_ssize_t i = 0; i < k; i++) x |= (uint64_t)p[i] << (8 * i);
        return x;
    }
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int sob_byte(uint64_t m) { unsigned long i; _BitScanForward64(&i, m); return (int)(i >> 3); }
    #else
    static inline int sob_byte(uint64_t m) { return __builtin_ctzll(m) >> 3; }
    #endif
    static inline void sob_store8(unsigned char* p, uint64_t x) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
    #endif
        memcpy(p, &x, 8);
    }
    #define SOB_ONES 0x0101010101010101ULL
    #define SOB_HIGHS 0x8080808080808080ULL
    #if defined(__SSE2__) && defined(__GNUC__)
    #include <emmintrin.h>
    #endif
    /* The first index from j (up to m) of a byte outside lo..hi (ASCII, lo <= hi). 16 bytes at
       a time with SSE2: most words and numbers end inside the first 16, with one predictable
       branch, where 8 at a time takes a second round for every word of 8 letters or more. */
    static inline Py_ssize_t sob_run_end(const unsigned char* s, Py_ssize_t j, Py_ssize_t m,
                                         unsigned char lo, unsigned char hi) {
    #if defined(__SSE2__) && defined(__GNUC__)
        /* x - lo + 0x80 puts lo..hi on the smallest signed bytes: the others compare greater */
        const __m128i bias = _mm_set1_epi8((char)(0x80 - lo));
        const __m128i top = _mm_set1_epi8((char)(-128 + (hi - lo)));
        while (j + 16 <= m) {
            __m128i t = _mm_add_epi8(_mm_loadu_si128((const __m128i*)(s + j)), bias);
            int out = _mm_movemask_epi8(_mm_cmpgt_epi8(t, top));
            if (out) return j + __builtin_ctz((unsigned)out);
            j += 16;
        }
    #else
        while (j + 8 <= m) {
            uint64_t x = sob_load8(s + j), y = x & ~SOB_HIGHS;
            uint64_t in = (y + (0x80 - lo) * SOB_ONES) & ~(y + (0x7F - hi) * SOB_ONES) & ~x & SOB_HIGHS;
            if (in != SOB_HIGHS) return j + sob_byte(~in & SOB_HIGHS);
            j += 8;
        }
    #endif
        while (j < m && s[j] >= lo && s[j] <= hi) j++;
        return j;
    }
    /* The bytes >= 0x80 of SOB_WIDE bytes at p as a mask, and the index of its lowest one. */
    #if defined(__SSE2__) && defined(__GNUC__)
    #define SOB_WIDE 16
    static inline uint64_t sob_highs(const unsigned char* p) {
        return (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i*)p));
    }
    static inline int sob_pos(uint64_t m) { return __builtin_ctzll(m); }
    #else
    #define SOB_WIDE 8
    static inline uint64_t sob_highs(const unsigned char* p) { return sob_load8(p) & SOB_HIGHS; }
    static inline int sob_pos(uint64_t m) { return sob_byte(m); }
    #endif
    """
    const uint64_t ONES "SOB_ONES"      # 0x01 in every byte
    const uint64_t HIGHS "SOB_HIGHS"    # 0x80 in every byte
    uint64_t sob_load8(const uint8_t* p) noexcept nogil
    void sob_store8(uint8_t* p, uint64_t x) noexcept nogil
    uint64_t sob_load_tail(const uint8_t* p, Py_ssize_t k) noexcept nogil
    int sob_byte(uint64_t m) noexcept nogil   # index of the lowest byte set in a non-zero mask
    Py_ssize_t sob_run_end(const uint8_t* s, Py_ssize_t j, Py_ssize_t m, uint8_t lo, uint8_t hi) noexcept nogil
    const Py_ssize_t SOB_WIDE           # bytes sob_highs looks at: 16 with SSE2, else 8
    uint64_t sob_highs(const uint8_t* p) noexcept nogil
    int sob_pos(uint64_t m) noexcept nogil


cdef inline uint64_t _sw_range(uint64_t y, uint64_t lo, uint64_t hi) noexcept nogil:
    """Bytes of ``y`` (all below 0x80: no carry crosses a byte) from ``lo`` to ``hi``."""
    return (y + (0x80 - lo) * ONES) & ~(y + (0x7F - hi) * ONES) & HIGHS

cdef inline uint64_t _sw_eq(uint64_t y, uint64_t c) noexcept nogil:
    """Bytes of ``y`` (all below 0x80) equal to ``c``."""
    return ~((y ^ (c * ONES)) + 0x7F * ONES) & HIGHS

cdef inline uint64_t _sw_pairs(uint64_t x, uint64_t* carry) noexcept nogil:
    """Bytes of ``x`` that are an ASCII digit after O/l/I, or O/l/I after an ASCII digit: every
    homoglyph run holds one. ``carry`` holds the digit and O/l/I masks of the previous word's
    last byte (bits 7 and 15) and is updated."""
    cdef uint64_t hi = x & HIGHS, y = x & ~HIGHS, d, h, r
    d = _sw_range(y, 48, 57) & ~hi
    h = (_sw_eq(y, 79) | _sw_eq(y, 108) | _sw_eq(y, 73)) & ~hi
    r = (d & ((h << 8) | (carry[0] >> 8))) | (h & ((d << 8) | (carry[0] & 0x80)))
    carry[0] = (d >> 56) | ((h >> 56) << 8)
    return r


cdef inline bint _sw_folds(uint64_t x) noexcept nogil:
    """Whether a byte of ``x`` is one normalization folds or drops (only bytes >= 0x80 can be)."""
    cdef uint64_t m = x & HIGHS
    while m:
        if _FOLD[(x >> (8 * sob_byte(m))) & 0xFF]:
            return True
        m &= m - 1
    return False


cdef uint8_t _N1[256]       # bit 0 ASCII digit, bit 1 O/l/I

def _init_n1():
    cdef int i
    for i in range(256):
        _N1[i] = (1 if 48 <= i <= 57 else 0) | (2 if chr(i) in "OlI" else 0)

_init_n1()


cdef int _fold1(const Py_UCS1* src, Py_ssize_t n, Py_UCS1* out) noexcept nogil:
    """Step 0 for 1-byte text but for homoglyphs: 0 when no byte folds (the text is its own
    fold), 1 when ``out`` holds the folded copy, 2 when a byte is dropped (the caller uses
    _normalize). Only bytes >= 0x80 can fold: they are found 16 (or 8) at a time."""
    cdef Py_ssize_t i = 0, k
    cdef uint64_t mm
    cdef uint8_t f
    cdef int rc = 0
    while i < n:
        if i + SOB_WIDE <= n:
            mm = sob_highs(src + i)
        else:   # the last bytes: a mask made one by one
            mm = 0
            for k in range(n - i):
                if src[i + k] >= 0x80:
                    mm |= 1ULL << (k if SOB_WIDE == 16 else 8 * k + 7)
        while mm:
            k = i + sob_pos(mm)
            mm &= mm - 1
            f = _FOLD[src[k]]
            if f == DROP:
                return 2
            if f:
                if rc == 0:
                    memcpy(out, src, n)
                    rc = 1
                out[k] = f
        i += SOB_WIDE
    return rc


cdef Py_ssize_t _normalize1(const Py_UCS1* src, Py_ssize_t n, Py_UCS1* out,
                            Py_UCS1** plain, int needed) noexcept nogil:
    """_normalize for 1-byte text without dropped characters, as a copy patched where it
    changes: folded bytes (only bytes >= 0x80 are looked at), then the homoglyph runs around
    each digit-O/l/I pair (found 8 bytes at a time). Returns n, -1 without memory, or -2 when
    a character is dropped (the caller then uses _normalize)."""
    cdef Py_ssize_t i, a, b, k, p, done = 0
    cdef uint64_t x, m, carry = 0
    cdef uint8_t c, f
    memcpy(out, src, n)
    if needed & 2:
        i = 0
        while i < n:
            x = sob_load8(src + i) if i + 8 <= n else sob_load_tail(src + i, n - i)
            m = x & HIGHS
            while m:
                k = i + sob_byte(m)
                f = _FOLD[src[k]]
                if f == DROP:
                    return -2
                if f:
                    out[k] = f
                m &= m - 1
            i += 8
    # folding may create digits next to O/l/I (\xb2l), so the pairs are looked for in ``out``
    i = 0
    while i < n:
        x = sob_load8(out + i) if i + 8 <= n else sob_load_tail(out + i, n - i)
        m = _sw_pairs(x, &carry)
        while m:
            p = i + sob_byte(m)
            m &= m - 1
            if p < done:
                continue   # inside a run already handled
            # the maximal run of 0-9 O l I around the pair out[p - 1], out[p]
            a = p - 1
            while a > 0 and _N1[out[a - 1]]:
                a -= 1
            b = p + 1
            while b < n and _N1[out[b]]:
                b += 1
            done = b
            if (a == 0 or not _is_alpha(out[a - 1])) and (b == n or not _is_alpha(out[b])):
                if plain[0] == NULL:
                    plain[0] = <Py_UCS1*>malloc(n + 1)
                    if plain[0] == NULL:
                        return -1
                    memcpy(plain[0], out, n)
                for k in range(a, b):
                    if out[k] == 79:
                        out[k] = 48
                    elif out[k] > 57:
                        out[k] = 49
        i += 8
    return n


def normalize(str text):
    """``(norm, offsets)`` exactly as ``gateway.inspect.normalize.normalize`` returns them."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), m
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef void* out = PyMem_Malloc((n + 1) * kind)
    cdef int32_t* offs = NULL
    if out == NULL:
        raise MemoryError()
    try:
        if kind == 1:
            m = _normalize(<Py_UCS1*>data, n, <Py_UCS1*>out, &offs, NULL)
        elif kind == 2:
            m = _normalize(<Py_UCS2*>data, n, <Py_UCS2*>out, &offs, NULL)
        else:
            m = _normalize(<uint32_t*>data, n, <uint32_t*>out, &offs, NULL)
        if m < 0:
            raise MemoryError()
        norm = PyUnicode_FromKindAndData(kind, out, m)
        if offs == NULL:
            return norm, list(range(n + 1))
        return norm, [offs[i] for i in range(m + 1)]
    finally:
        PyMem_Free(out)
        free(offs)


# ---------------------------------------------------------------------------- scanner
# The algorithm is the reference's, step for step (see the module docstring of _scan_py). Hot steps
# (words, phrases, chunk windows, e-mail, IPv4, ICD-10, markings and health terms, overlaps) run
# here over the normalized buffer; rare steps behind a C gate (credentials, IPv6 validation) call
# the reference's own code on the normalized text, so both cannot drift apart.
#
# Where the time goes, and what keeps it short (bench/scan.py; _stage_times):
# - one pass (_lex) finds words, chunks, anchors and special characters, and evaluates the windows
#   of each chunk as soon as it is found, while the text around it is still in cache;
# - in 1-byte text (the common case) the usual runs, an ASCII letter then lower-case letters or a
#   run of digits, are found 16 bytes at a time (SSE2; 8 with SWAR elsewhere) and handled without
#   the general path, which also hands the gap after a word (spaces, punctuation) to the next
#   word itself (one space before a lower-case word, the most common gap, without a loop); a
#   word of 2+ letters is looked up only when its row of _T2 (one per first two letters) has
#   the bit of its last letter and length, and the same row's _T2P says whether a secret prefix
#   may start there (one load for both: ~59 instructions per ASCII word, ~80 with a multiply
#   hash filter and a separate prefix table; paired timing 6% faster on the bench corpus, 16%
#   on prose); words of ASCII and accented letters (about 1 word in 13 of Spanish and
#   Portuguese prose) have a path of their own that filters before any call and folds and
#   looks up by tables (~70 instructions plus the walk, ~210 through _add_token: the gateway's
#   accented chat body 26 -> 19.5 instructions per character);
# - a window stops as soon as no layout goes on from its chunk lengths, before it looks for the
#   next chunk (a chunk list shared between consecutive windows saved nothing on top of that and
#   cost a branch the predictor misses: branch mispredictions, ~0.5 per character, are about as
#   much of the time as the instructions); a layout whose detectors all need a context word that
#   is not there skips its detector loop; the gap between chunks is read from a table; a
#   window's compact value is built only once a detector may take it (of ~59k window steps per
#   MB, ~25k end on a layout prefix without detectors and ~12k on absent context: paired timing
#   5% faster); a memo of the chunk after each chunk end, so that the window at the next chunk
#   need not find it again, was tried on top of that and gained nothing (median of paired runs);
#   the layouts are a trie over chunk lengths, one table load per step (paired timing 5% faster
#   than a key, two direct tables and a hash probe, for 1.5% fewer instructions: the branches
#   that depend on the data count more than instructions here). Tried and dropped (Nov 2026):
#   the lexer handing each chunk to the windows still open (5-6% slower: a call per chunk, the
#   window state in memory), or collecting each run of joined chunks and evaluating its windows
#   in one loop (7% slower: a run must keep MAX_CHUNKS-1 chunks past a number, and candidates
#   out of start order cost _resolve three times as much); next chunks found 16 bytes at a time
#   (2.4% fewer instructions, slower);
# - measured (callgrind, one scan of bench/scan.py's 1 MB corpus, Nov 2026): ~36 instructions
#   per character (41 before the trie and the word rows), ~40% in the windows (a digit run costs
#   200-1100 instructions: each chunk starts windows over the next ones, each layout prefix runs
#   its detectors; finding the next chunks is ~8% of the scan) and ~33% in _lex; on prose alone
#   ~13 (17 before).
#   Tried and dropped: walking 64-byte blocks by bit masks of their classes (ctz to each run and
#   special character; SSE2 to classify): as fast as the byte walk at best, since the masks cost
#   ~1.5 instructions a byte and each word still needs its own filter and gates;
# - a second pass (Nov 2026) timed each change against the build before it in one process,
#   alternately (both builds loaded side by side; callgrind's branch simulation did not predict
#   the machine's): the windows are ~40% of the wall time (all windows off: 0.60 of it), 82% of
#   them go on to a second chunk (prose words after a number are chunks too), and a few % of the
#   time is in the validators the windows run, more than their instructions suggest (their
#   branches miss: the card check now reads its issuer prefixes once and doubles Luhn digits
#   from a table, ~1.5% of the scan). Tried and dropped: keeping the last context mask for the
#   same token range (consecutive chunks of one number: few hits, 2.5-3% slower); one test for
#   "repeated character or prefix only" instead of two branches (fewer simulated misses, no
#   gain); stepping the one space after a word without a branch instead of the fast path above
#   (2-4% slower); the IBAN check without a division per character (slower, by code layout
#   alone: changes under ~2% are within what moving code around does);
# - Findings are made with the collector off: one young-generation collection after the scan
#   instead of one per 700 Findings during it;
# - normalization copies 1-byte text only when a byte folds; the homoglyph step is checked by the
#   lexer, which starts again on the normalized text in the rare case it changes something;
# - candidates overlap only within clusters, resolved one by one after a merge of sorted runs.

from libc.stdlib cimport malloc, calloc, realloc, free, qsort
from libc.string cimport memset, memmove
from libc.stdint cimport int64_t, uint64_t

cdef extern from "Python.h":
    bint Py_UNICODE_ISALNUM(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISDECIMAL(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISUPPER(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISLOWER(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISTITLE(Py_UCS4 ch) nogil

import ipaddress as _ipaddress

from gateway.inspect import _scan_py as _R
from gateway.inspect import detectors as _D
from gateway.inspect import keywords as _K
from gateway.inspect.findings import Finding
from gateway.inspect.normalize import fold_word as _fold_word

# ASCII character classes
DEF C_LOWER = 1
DEF C_UPPER = 2
DEF C_DIGIT = 4
DEF C_JOIN = 8       # " \t\n\r.-/()"   chunk join gap
DEF C_PGAP = 16      # " \t.-'/" (+ U+2019)  phrase gap
DEF C_LGAP = 32      # " \t:=-\"'"     marking label gap
DEF C_LOCAL = 64     # "._%+-"          e-mail local part extras
DEF C_SECB = 128     # [A-Za-z0-9_-]   secret/JWT look-behind
DEF C_HEX = 256      # [0-9A-Fa-f]
DEF C_IP6 = 512      # [0-9A-Fa-f:.]
DEF C_SPECIAL = 1024 # "@:=-"           triggers of the special pass
DEF C_ALNUM = 7

cdef uint16_t _CLS[128]

def _init_classes():
    cdef int i
    for i in range(128):
        _CLS[i] = 0
    for i in range(128):
        c = chr(i)
        if "a" <= c <= "z":
            _CLS[i] |= C_LOWER
        if "A" <= c <= "Z":
            _CLS[i] |= C_UPPER
        if "0" <= c <= "9":
            _CLS[i] |= C_DIGIT
        if c in " \t\n\r.-/()":
            _CLS[i] |= C_JOIN
        if c in " \t.-'/":
            _CLS[i] |= C_PGAP
        if c in " \t:=-\"'":
            _CLS[i] |= C_LGAP
        if c in "._%+-":
            _CLS[i] |= C_LOCAL
        if c.isascii() and (c.isalnum() or c in "_-"):
            _CLS[i] |= C_SECB
        if c in "0123456789abcdefABCDEF":
            _CLS[i] |= C_HEX
        if c in "0123456789abcdefABCDEF:.":
            _CLS[i] |= C_IP6
        if c in "@:=-":
            _CLS[i] |= C_SPECIAL
    # the reference's own character sets: fail loudly at import if they change
    assert _R._JOIN == frozenset(" \t\n\r.-/()")
    assert _R._PHRASE_GAP == frozenset(" \t.-'\u2019/")
    assert _R._LABEL_GAP == frozenset(" \t:=-\"'")
    assert _R._MAX_WORDS == 6 and _K.CONTEXT_WINDOW == 40
    assert _R._CHUNK.pattern == "[0-9A-Za-zÑñ]+" and _R._TOKEN.pattern == "[^\\W\\d_]+"

_init_classes()

cdef inline bint _c(uint32_t c, int cls) noexcept nogil:
    return c < 128 and (_CLS[c] & cls) != 0

cdef inline bint _isalnum(uint32_t c) noexcept nogil:
    if c < 128:
        return (_CLS[c] & C_ALNUM) != 0
    return Py_UNICODE_ISALNUM(c)

cdef inline bint _chunkch(uint32_t c) noexcept nogil:
    if c < 128:
        return (_CLS[c] & C_ALNUM) != 0
    return c == 0xD1 or c == 0xF1

# ---- words: folded token -> word id (words of every keyword phrase)

DEF WF_LIMIT = 0x30000
DEF MAX_WORD = 40
cdef uint8_t _TOK1[256]      # code point < 256 -> 1 when it is a word-token character
DEF W3_BITS = 15
DEF W3_WORDS = 512   # (1 << W3_BITS) / 64
cdef uint64_t _W3[W3_WORDS]   # bit set: some keyword word has these first two
                                          # letters, last letter and length (a 4 KB filter)

cdef inline uint64_t _w3_bit(uint64_t c0, uint64_t c1, uint64_t z, uint64_t L) noexcept nogil:
    """Bit of the filter for a word of length L with first letters c0 c1 (c1 = 0 for one letter)
    and last letter z, all lower case."""
    return ((c0 | (c1 << 8) | (z << 16) | (L << 24)) * 0x9E3779B97F4A7C15ULL) >> (64 - W3_BITS)
cdef int _MAX_WORD_LEN = 0   # longest word of any keyword phrase

# The fast word path's filter and secret-prefix gate in one row per first two letters: row
# ((c0 << 5) ^ c1) & 1023 (the same for either case of the ASCII letter c0 and, for letters
# c1, one row per pair) has bit (z + 41 L) & 63 set when some keyword word of length L >= 2
# starts with c0 c1 (lower case) and ends with z. It lets through about as few words as _W3
# (in the bench corpus 12k of 111k words of 2+ letters, _W3 11k) for fewer instructions, and
# _T2P answers with the same row whether a secret prefix may start with c0 c1 (8 KB + 1 KB).
DEF T2_ROWS = 1024
cdef uint64_t _T2[T2_ROWS]
cdef uint8_t _T2P[T2_ROWS]   # 1: some secret prefix (or eyJ) has a first two characters of
                             # this row (exact answer: _prefix_two)

cdef inline uint32_t _t2_row(uint32_t c0, uint32_t c1) noexcept nogil:
    return ((c0 << 5) ^ c1) & (T2_ROWS - 1)
# non-ASCII token character -> the ASCII character fold_word makes of it (0: not ASCII)
cdef uint8_t _WF[WF_LIMIT]

DEF WT_SIZE = 4096

# The same words packed little-endian into two 64-bit keys (words are at most 16 ASCII letters):
# an ASCII word of the text is looked up with two loads and no per-character loop.
DEF WK_SIZE = 2048
cdef uint64_t _WK_1[WK_SIZE]
cdef uint64_t _WK_2[WK_SIZE]
cdef uint8_t _WK_LEN[WK_SIZE]     # 0: empty
cdef int32_t _WK_ID[WK_SIZE]

cdef inline uint64_t _wk_hash(uint64_t k1, uint64_t k2, uint64_t n) noexcept nogil:
    return ((k1 * 0x9E3779B97F4A7C15ULL) ^ (k2 * 0xC2B2AE3D27D4EB4FULL) ^ n) >> 53

cdef inline uint64_t _load_le(const uint8_t* s, Py_ssize_t i, Py_ssize_t m) noexcept nogil:
    """Bytes s[i:i+8] as a little-endian word, zeros past m."""
    return sob_load8(s + i) if i + 8 <= m else sob_load_tail(s + i, m - i)

cdef inline int32_t _wk_find(uint64_t k1, uint64_t k2, Py_ssize_t L) noexcept nogil:
    """Word id of the folded word of length L packed little-endian into k1 (letters 0-7) and k2
    (letters 8-15, zero-padded), or -1."""
    cdef uint64_t h = _wk_hash(k1, k2, <uint64_t>L)
    while _WK_LEN[h]:
        if _WK_1[h] == k1 and _WK_2[h] == k2 and _WK_LEN[h] == L:
            return _WK_ID[h]
        h = (h + 1) & (WK_SIZE - 1)
    return -1

cdef inline int32_t _word_id_ascii(const uint8_t* s, Py_ssize_t m, Py_ssize_t i, Py_ssize_t L) noexcept nogil:
    """Word id of the ASCII letters s[i:i+L] (L <= 16; the first may be a capital, the others are
    lower case), or -1."""
    cdef uint64_t k1 = _load_le(s, i, m) | 0x20, k2 = 0, h
    if L < 8:
        k1 &= (1ULL << (8 * L)) - 1
    elif L > 8:
        k2 = _load_le(s, i + 8, m)
        if L < 16:
            k2 &= (1ULL << (8 * (L - 8))) - 1
    return _wk_find(k1, k2, L)
cdef uint64_t _WT_HASH[WT_SIZE]
cdef int32_t _WT_ID[WT_SIZE]      # -1 empty
cdef char _WT_POOL[16384]
cdef int32_t _WT_OFF[WT_SIZE]
cdef int32_t _WT_LEN[WT_SIZE]

cdef inline uint64_t _fnv(uint64_t h, uint8_t b) noexcept nogil:
    return (h ^ b) * 1099511628211ULL

DEF FNV0 = 14695981039346656037ULL

cdef int32_t _word_id(const uint8_t* w, int n, uint64_t h) noexcept nogil:
    cdef const char* pool = _WT_POOL
    cdef uint64_t k = h & (WT_SIZE - 1)
    cdef int i
    while _WT_ID[k] >= 0:
        if _WT_HASH[k] == h and _WT_LEN[k] == n:
            for i in range(n):
                if <uint8_t>pool[_WT_OFF[k] + i] != w[i]:
                    break
            else:
                return _WT_ID[k]
        k = (k + 1) & (WT_SIZE - 1)
    return -1

# ---- phrases: sequence of word ids -> mask (bit d: context of detector d; high bits: tables)

DEF B_ICD = 60
DEF B_HEALTH = 61
DEF B_MARK = 62
DEF B_LABEL = 63
DEF PT_BITS = 11   # small tables stay in cache: 538 phrases and prefixes today
DEF PT_SIZE = 1 << PT_BITS
cdef uint64_t _PT_KEY[PT_SIZE]    # 0 empty
cdef uint64_t _PT_MASK[PT_SIZE]
cdef uint8_t _PT_UPPER[PT_SIZE]   # 1: a phrase of CONTEXT_UPPER, context only in capitals
cdef uint64_t _ALL_MASK = 0        # union of every phrase's mask
cdef uint8_t _WORD_HUPPER[1024]    # word id -> 1 when it is a HEALTH_UPPER term (capitals only)

cdef inline uint64_t _pkey(uint64_t key, int32_t wid, int k) noexcept nogil:
    return key | (<uint64_t>(wid + 1) << (10 * k))

cdef inline int64_t _phrase(uint64_t key) noexcept nogil:
    """Index of ``key`` in the phrase table (it is a phrase or a prefix of one), or -1."""
    cdef uint64_t k = (key * 11400714819323198485ULL) >> (64 - PT_BITS)
    while _PT_KEY[k]:
        if _PT_KEY[k] == key:
            return <int64_t>k
        k = (k + 1) & (PT_SIZE - 1)
    return -1

def _init_words():
    global _ALL_MASK
    cdef int i
    for i in range(WF_LIMIT):
        _WF[i] = 0
    for cp in range(0x80, WF_LIMIT):
        ch = chr(cp)
        if ch.isalnum() and not ch.isdecimal():
            f = _fold_word(ch)
            if f.isascii():
                assert len(f) == 1, (cp, f)
                _WF[cp] = ord(f)
    tables = {}
    for d, det in enumerate(_D.DETECTORS):
        for ph in _K.CONTEXT.get(det.id, ()):
            tables.setdefault(ph, 0)
            tables[ph] |= 1 << d
    assert len(_D.DETECTORS) <= B_ICD
    for bit, phrases in ((B_ICD, _K.ICD10_CONTEXT), (B_HEALTH, _K.HEALTH_TERMS),
                         (B_MARK, _K.MARKINGS), (B_LABEL, _K.MARKING_LABELS)):
        for ph in phrases:
            tables.setdefault(ph, 0)
            tables[ph] |= 1 << bit
    global _MAX_WORD_LEN
    for i in range(256):
        ch = chr(i)
        _TOK1[i] = ch.isalnum() and not ch.isdecimal() and ch != "_"
    words = sorted({w for ph in tables for w in ph.split(" ")})
    _MAX_WORD_LEN = max(len(w) for w in words)
    assert _MAX_WORD_LEN < 64
    assert _MAX_WORD_LEN <= 16   # _word_id_ascii packs a word into two 64-bit keys
    assert W3_WORDS * 64 == 1 << W3_BITS
    for i in range(W3_WORDS):
        _W3[i] = 0
    for i in range(T2_ROWS):
        _T2[i] = 0
    for w in words:
        b = _w3_bit(ord(w[0]), ord(w[1]) if len(w) > 1 else 0, ord(w[-1]), len(w))
        _W3[b >> 6] |= 1ULL << (b & 63)
        if len(w) > 1:
            _T2[_t2_row(ord(w[0]), ord(w[1]))] |= 1ULL << ((ord(w[-1]) + 41 * len(w)) & 63)
    assert len(words) < 1023 and all(w.isascii() and 0 < len(w) <= MAX_WORD for w in words)
    for i in range(WT_SIZE):
        _WT_ID[i] = -1
    pool = bytearray()
    ids = {}
    for wid, w in enumerate(words):
        b = w.encode()
        h = FNV0
        for x in b:
            h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        k = h & (WT_SIZE - 1)
        while _WT_ID[k] >= 0:
            k = (k + 1) & (WT_SIZE - 1)
        _WT_ID[k] = wid
        _WT_HASH[k] = h
        _WT_OFF[k] = len(pool)
        _WT_LEN[k] = len(b)
        pool += b
        ids[w] = wid
    assert len(pool) <= 16384
    for i in range(WK_SIZE):
        _WK_LEN[i] = 0
    for w, wid in ids.items():
        b = w.encode() + bytes(16)
        k1 = int.from_bytes(b[:8], "little")
        k2 = int.from_bytes(b[8:16], "little")
        h = _wk_hash(k1, k2, len(w))
        while _WK_LEN[h]:
            h = (h + 1) & (WK_SIZE - 1)
        _WK_1[h] = k1
        _WK_2[h] = k2
        _WK_LEN[h] = len(w)
        _WK_ID[h] = wid
    for i, x in enumerate(pool):
        _WT_POOL[i] = x
    for i in range(1024):
        _WORD_HUPPER[i] = 0
    for w in _K.HEALTH_UPPER:
        if w in ids:
            _WORD_HUPPER[ids[w]] = 1
    for i in range(PT_SIZE):
        _PT_KEY[i] = 0
        _PT_MASK[i] = 0
        _PT_UPPER[i] = 0
    _ALL_MASK = 0
    assert len({" ".join(ph.split(" ")[:k]) for ph in tables for k in range(1, 7)}) < PT_SIZE // 2
    for ph, mask in tables.items():
        ws = ph.split(" ")
        assert len(ws) <= 6
        key = 0
        for k, w in enumerate(ws):
            key |= (ids[w] + 1) << (10 * k)
            _pt_insert(key, mask if k == len(ws) - 1 else 0)
        _ALL_MASK |= mask
        if ph in _K.CONTEXT_UPPER:
            _PT_UPPER[_phrase(key)] = 1

cdef void _pt_insert(uint64_t key, uint64_t mask):
    cdef uint64_t k = (key * 11400714819323198485ULL) >> (64 - PT_BITS)
    while _PT_KEY[k] and _PT_KEY[k] != key:
        k = (k + 1) & (PT_SIZE - 1)
    _PT_KEY[k] = key
    _PT_MASK[k] |= mask

_init_words()

# ---- detector tables

DEF MAX_DET = 64
cdef validator_t _DV[MAX_DET]
cdef int _DCTX[MAX_DET]     # 0 none, 1 always, 2 compact
cdef int _DTIER[MAX_DET]
cdef int _NDET = 0
cdef int _PHONE, _EMAIL, _IP, _API_KEY, _JWT_I, _PK, _PASSWORD, _MARKING, _HEALTH_I
cdef int _MAX_CHUNKS, _MAX_COMPACT

DEF LT_SIZE = 512   # layouts and their prefixes (249 today), a dead node and the root
DEF LT_ROWS = 128   # nodes a window may go on from (80 prefixes today, the root, the dead node)
# The layouts as a trie over chunk lengths: node 0 is dead (no layout starts with the window's
# chunk lengths), node 1 the root (no chunk yet); the nodes a window may go on from are
# numbered first, each with a row of 64 successors, one per chunk length (a length over
# MAX_COMPACT < 64 never reaches the table). One load per window step, no key, no hash probe.
cdef uint16_t _LT_NEXT[LT_ROWS * 64]
cdef int32_t _LT_OFF[LT_SIZE]
cdef int32_t _LT_N[LT_SIZE]        # detectors of that exact layout (0: only a prefix)
cdef uint8_t _LT_MORE[LT_SIZE]     # 1: a proper prefix of some layout (a longer window may match)
cdef int32_t _LT_DETS[4096]
# the node's detectors as bit sets (bit d): all of them, and those whose context is ``always``
# or ``compact`` (the phone is in neither: it needs context unless in parentheses)
cdef uint64_t _LT_DMASK[LT_SIZE]
cdef uint64_t _LT_ALW[LT_SIZE]
cdef uint64_t _LT_CMP[LT_SIZE]

_DET_OUT = []   # detector index -> (id, category, country)

def _init_detectors():
    global _NDET, _PHONE, _EMAIL, _IP, _API_KEY, _JWT_I, _PK, _PASSWORD, _MARKING, _HEALTH_I
    global _MAX_CHUNKS, _MAX_COMPACT
    cdef int i, n = 0
    cdef validator_t f
    dets = _D.DETECTORS
    assert len(dets) <= MAX_DET
    _NDET = len(dets)
    _DET_OUT.clear()
    for i, det in enumerate(dets):
        f = NULL
        if det.validator:
            f = _validator_by_name(det.validator)
            if f == NULL:
                raise ImportError(f"compiled core lacks validator {det.validator!r}")
        _DV[i] = f
        _DCTX[i] = {"none": 0, "always": 1, "compact": 2}[det.context]
        _DTIER[i] = det.tier
        _DET_OUT.append((det.id, det.category, det.country))
    I = _D.INDEX
    _PHONE, _EMAIL, _IP = I["intl.phone"], I["intl.email"], I["intl.ip"]
    _API_KEY, _JWT_I, _PK = I["secret.api_key"], I["secret.jwt"], I["secret.private_key"]
    _PASSWORD, _MARKING, _HEALTH_I = I["secret.password"], I["gov.marking"], I["health.term"]
    _MAX_CHUNKS, _MAX_COMPACT = _D.MAX_CHUNKS, _D.MAX_COMPACT
    assert _MAX_CHUNKS <= 10 and _MAX_COMPACT < 64
    prefixes = set()
    for lengths in _D.LAYOUTS:
        for k in range(1, len(lengths)):
            prefixes.add(lengths[:k])
    # dead, root, then the proper prefixes (they have rows), then the layouts that are no prefix
    order = [None, ()] + sorted(prefixes) + sorted(set(_D.LAYOUTS) - prefixes)
    node = {lengths: i for i, lengths in enumerate(order)}
    assert len(prefixes) + 2 <= LT_ROWS and len(order) <= LT_SIZE
    for i in range(LT_ROWS * 64):
        _LT_NEXT[i] = 0
    for i, lengths in enumerate(order):
        if lengths is None:
            ds = ()
        else:
            ds = _D.LAYOUTS.get(lengths, ())
            if lengths:
                # (no negative indices: this module is compiled with wraparound off)
                _LT_NEXT[node[lengths[:len(lengths) - 1]] * 64 + lengths[len(lengths) - 1]] = i
        _LT_OFF[i] = n
        _LT_N[i] = len(ds)
        _LT_DMASK[i] = _LT_ALW[i] = _LT_CMP[i] = 0
        for d in ds:
            _LT_DMASK[i] |= 1ULL << d
            if d != _PHONE and _DCTX[d] == 1:
                _LT_ALW[i] |= 1ULL << d
            if d != _PHONE and _DCTX[d] == 2:
                _LT_CMP[i] |= 1ULL << d
        _LT_MORE[i] = lengths == () or lengths in prefixes
        for d in ds:
            _LT_DETS[n] = d
            n += 1
    assert n <= 4096

_init_detectors()


# ---- per-scan state

cdef struct Tok:
    int32_t s
    int32_t e
    int32_t wid
    uint8_t upper
    uint8_t joined

cdef struct Span:
    int32_t s
    int32_t e
    int32_t flags   # chunks: bit 0 holds an ASCII digit, bit 1 is 1-4 upper-case letters

cdef struct Cand:
    int32_t s
    int32_t e
    int32_t d
    int32_t tier

cdef struct State:
    Tok* toks
    Py_ssize_t ntok
    Py_ssize_t captok
    const void* plain   # the text before the homoglyph step, when that step changed it
    Cand* cands
    Py_ssize_t ncand
    Py_ssize_t capcand
    bint g_secret
    bint g_jwt
    bint g_pk
    bint g_url
    bint g_pass
    bint g_ip6
    Span* enc           # sites of encoded values (step 7 of the reference), for _R.encoded_values
    Py_ssize_t nenc
    Py_ssize_t capenc
    bint check_homo     # the homoglyph step is left to the lexer (1-byte text, see _scan1)

cdef int _grow(void** p, Py_ssize_t* cap, size_t item) noexcept nogil:
    cdef Py_ssize_t n = cap[0] * 2 + 64
    cdef void* q = realloc(p[0], n * item)
    if q == NULL:
        return -1
    p[0] = q
    cap[0] = n
    return 0

cdef int _cand(State* S, int32_t s, int32_t e, int d) noexcept nogil:
    if S.ncand == S.capcand and _grow(<void**>&S.cands, &S.capcand, sizeof(Cand)) < 0:
        return -1
    S.cands[S.ncand].s = s
    S.cands[S.ncand].e = e
    S.cands[S.ncand].d = d
    S.cands[S.ncand].tier = _DTIER[d]
    S.ncand += 1
    return 0

# ---- step 1: words

cdef inline uint32_t _fold_ch(uint32_t c) noexcept nogil:
    """The ASCII letter fold_word makes of the token character c, or 0 when it makes none."""
    if c < 128:
        return c | 0x20
    return _WF[c] if c < WF_LIMIT else 0


cdef uint8_t _CASE1[256]   # code point < 256 -> 1 lower or title case, 2 upper case

def _init_case1():
    cdef Py_UCS4 c
    for c in range(256):
        _CASE1[c] = 1 if (Py_UNICODE_ISLOWER(c) or Py_UNICODE_ISTITLE(c)) else \
            (2 if Py_UNICODE_ISUPPER(c) else 0)

_init_case1()

cdef uint8_t _WORD_FOLD1[256]   # code point < 256 -> _fold_ch (the ASCII letter fold_word makes, or 0)

def _init_word_fold1():
    cdef int c
    for c in range(256):
        _WORD_FOLD1[c] = _fold_ch(c)

_init_word_fold1()


cdef inline int32_t _word_id1(const Py_UCS1* s, Py_ssize_t i, Py_ssize_t j, bint* upper) noexcept nogil:
    """_add_token's folding and word lookup for the 1-byte word token s[i:j] of 2 to 16 letters
    (_MAX_WORD_LEN at most), by tables: each letter's fold and case, the folded word packed into
    two 64-bit keys and looked up as _word_id_ascii does. Sets ``upper`` as _add_token's ``cased
    and not lower`` (when the word is found)."""
    cdef uint8_t buf[16]
    cdef uint8_t f, cs = 0
    cdef Py_ssize_t x
    memset(buf, 0, 16)
    for x in range(i, j):
        f = _WORD_FOLD1[s[x]]
        if f == 0:
            return -1   # a letter folding to no ASCII letter is in no keyword word
        cs |= _CASE1[s[x]]
        buf[x - i] = f
    upper[0] = cs == 2
    return _wk_find(sob_load8(buf), sob_load8(buf + 8), j - i)


cdef int _add_token(const uchar_t* s, Py_ssize_t i, Py_ssize_t j, State* S,
                    bint* prev_kept) noexcept nogil:
    """Word token s[i:j]: kept when it is a word of some keyword phrase (the others can neither
    start, end nor continue a phrase); ``joined`` is set on the previous kept token when it is
    the previous token of the text and the gap between them is a phrase gap."""
    cdef Py_ssize_t x, g
    cdef uint32_t c
    cdef uint8_t f
    cdef uint8_t buf[MAX_WORD]
    cdef int wl
    cdef uint64_t h
    cdef bint poison, cased, lower
    cdef int32_t wid = -1
    cdef Tok* tk
    cdef uint32_t f0 = _fold_ch(s[i])
    cdef uint32_t f1 = _fold_ch(s[i + 1]) if j - i > 1 else 0
    cdef uint32_t z = _fold_ch(s[j - 1])
    cdef uint64_t b = _w3_bit(f0, f1, z, <uint64_t>(j - i))
    # cheap filter: some keyword word has these first two letters, last letter and length
    # (a letter folding to no ASCII letter is in no keyword word)
    if j - i <= _MAX_WORD_LEN and f0 and z and (j - i == 1 or f1) and (_W3[b >> 6] >> (b & 63)) & 1:
        wl = 0
        h = FNV0
        poison = cased = lower = False
        for x in range(i, j):
            c = s[x]
            if c < 128:
                if _CLS[c] & C_UPPER:
                    cased = True
                else:
                    lower = True
                f = <uint8_t>(c | 0x20)
            else:
                if c < 256:   # Latin-1: the same answers from a table (no call per letter)
                    if _CASE1[c] & 1:
                        lower = True
                    elif _CASE1[c] & 2:
                        cased = True
                elif Py_UNICODE_ISLOWER(c) or Py_UNICODE_ISTITLE(c):
                    lower = True
                elif Py_UNICODE_ISUPPER(c):
                    cased = True
                f = _WF[c] if c < WF_LIMIT else 0
                if f == 0:
                    poison = True
                    break
            buf[wl] = f
            wl += 1
            h = _fnv(h, f)
        if not poison:
            wid = _word_id(buf, wl, h)
    if wid >= 0:
        return _push_token(s, i, j, wid, cased and not lower, S, prev_kept)
    prev_kept[0] = False
    return 0


cdef inline int _push_token(const uchar_t* s, Py_ssize_t i, Py_ssize_t j, int32_t wid, bint upper,
                            State* S, bint* prev_kept) noexcept nogil:
    """Append the keyword-word token s[i:j]; ``joined`` is set on the previous kept token when it
    is the previous token of the text and the gap between them is a phrase gap."""
    cdef Py_ssize_t g
    cdef Tok* tk
    if S.ntok == S.captok and _grow(<void**>&S.toks, &S.captok, sizeof(Tok)) < 0:
        return -1
    if prev_kept[0]:
        # phrase join with the previous token: a gap of 1-3 characters from " \t.-'’/"
        g = S.toks[S.ntok - 1].e
        if i - g <= 3:
            while g < i and (_c(s[g], C_PGAP) or s[g] == 0x2019):
                g += 1
            S.toks[S.ntok - 1].joined = g == i
    tk = &S.toks[S.ntok]
    tk.s = <int32_t>i
    tk.e = <int32_t>j
    tk.wid = wid
    tk.upper = upper
    tk.joined = False
    S.ntok += 1
    prev_kept[0] = True
    return 0


cdef bint _context(const uchar_t* s, State* S, uint64_t bit, Py_ssize_t p) noexcept nogil:
    """Whether a phrase with ``bit`` lies within the CONTEXT_WINDOW characters before ``p``."""
    cdef Py_ssize_t lo, hi, a, b, mid, t, u
    cdef int k
    cdef uint64_t key
    cdef int64_t h
    cdef Tok* toks = S.toks
    cdef bint up
    if not (_ALL_MASK & bit):
        return False
    a = 0
    b = S.ntok
    while a < b:   # first token starting at or after p - 40
        mid = (a + b) >> 1
        if toks[mid].s < p - 40:
            a = mid + 1
        else:
            b = mid
    lo = a
    b = S.ntok
    while a < b:   # first token starting at or after p
        mid = (a + b) >> 1
        if toks[mid].s < p:
            a = mid + 1
        else:
            b = mid
    hi = a - 1
    if hi >= 0 and toks[hi].e > p:
        hi -= 1
    for t in range(lo, hi + 1):
        key = 0
        u = t
        k = 0
        up = True
        while True:
            if toks[u].wid < 0:
                break
            key = _pkey(key, toks[u].wid, k)
            k += 1
            up = up and toks[u].upper
            h = _phrase(key)
            if h < 0:
                break
            # a phrase of CONTEXT_UPPER ("sin", "c c") is context only in capitals
            if _PT_MASK[h] & bit and (up or not _PT_UPPER[h]):
                return True
            if u >= hi or k >= 6 or not toks[u].joined:
                break
            u += 1
    return False


cdef uint64_t _context_mask(const uchar_t* s, State* S, Py_ssize_t p) noexcept nogil:
    """The union of the masks of every phrase within the CONTEXT_WINDOW characters before ``p``:
    ``_context(bit)`` is ``_context_mask & bit``, computed once for all detectors of a window.
    The lexer calls it at p with the tokens found so far, the last of them at most a run past
    p: the tokens in question are the last few, found walking back."""
    cdef Py_ssize_t lo, hi, t, u
    cdef int k
    cdef uint64_t key, acc = 0
    cdef int64_t h
    cdef bint up
    cdef Tok* toks = S.toks
    hi = S.ntok - 1
    while hi >= 0 and toks[hi].s >= p:   # last token starting before p
        hi -= 1
    if hi >= 0 and toks[hi].e > p:
        hi -= 1
    lo = hi + 1
    while lo > 0 and toks[lo - 1].s >= p - 40:   # first token starting at or after p - 40
        lo -= 1
    for t in range(lo, hi + 1):
        key = 0
        u = t
        k = 0
        up = True
        while True:
            key = _pkey(key, toks[u].wid, k)
            k += 1
            up = up and toks[u].upper
            h = _phrase(key)
            if h < 0:
                break
            if up or not _PT_UPPER[h]:   # CONTEXT_UPPER phrases only in capitals
                acc |= _PT_MASK[h]
            if u >= hi or k >= 6 or not toks[u].joined:
                break
            u += 1
    return acc


# ---- step 6: markings and health terms

cdef bint _labelled(const uchar_t* s, State* S, Py_ssize_t t) noexcept nogil:
    cdef Py_ssize_t i, st, u
    cdef int k
    cdef uint64_t key
    cdef int64_t h
    cdef Tok* toks = S.toks
    if t == 0:
        return False
    i = toks[t - 1].e
    if toks[t].s - i > 4:
        return False
    while i < toks[t].s:
        if not _c(s[i], C_LGAP):
            return False
        i += 1
    st = t - 1
    while st >= 0 and st > t - 7:
        key = 0
        u = st
        k = 0
        while True:
            if toks[u].wid < 0:
                break
            key = _pkey(key, toks[u].wid, k)
            k += 1
            h = _phrase(key)
            if h < 0:
                break
            if u == t - 1:
                if _PT_MASK[h] & (1ULL << B_LABEL):
                    return True
                break
            if k >= 6 or not toks[u].joined:
                break
            u += 1
        st -= 1
    return False


cdef inline bint _free_end(const uchar_t* s, Py_ssize_t e, Py_ssize_t m) noexcept nogil:
    return e == m or not (s[e] == 95 or _isalnum(s[e]))


cdef int _terms(const uchar_t* s, Py_ssize_t m, State* S) noexcept nogil:
    cdef Py_ssize_t t, u, bh, bm, x
    cdef int k
    cdef uint64_t key, mask
    cdef int64_t h
    cdef Tok* toks = S.toks
    cdef bint up
    for t in range(S.ntok):
        if toks[t].wid < 0:
            continue
        x = toks[t].s
        if x > 0 and (s[x - 1] == 95 or _isalnum(s[x - 1])):
            continue  # part of an identifier such as CLIENT_SECRET or HIV2
        key = 0
        u = t
        k = 0
        bh = bm = -1
        while True:
            if toks[u].wid < 0:
                break
            key = _pkey(key, toks[u].wid, k)
            k += 1
            h = _phrase(key)
            if h < 0:
                break
            mask = _PT_MASK[h]
            if mask & (1ULL << B_HEALTH):
                bh = u
            if mask & (1ULL << B_MARK):
                bm = u
            if u >= S.ntok - 1 or k >= 6 or not toks[u].joined:
                break
            u += 1
        # a one-word term of HEALTH_UPPER ("aids", "avc") counts only in capitals
        if bh >= 0 and _free_end(s, toks[bh].e, m) and (
                not _WORD_HUPPER[toks[t].wid] or bh > t or toks[t].upper):
            if _cand(S, toks[t].s, toks[bh].e, _HEALTH_I) < 0:
                return -1
        if bm >= 0 and _free_end(s, toks[bm].e, m):
            up = True
            for x in range(t, bm + 1):
                if not toks[x].upper:
                    up = False
                    break
            if (up or _labelled(s, S, t)) and _cand(S, toks[t].s, toks[bm].e, _MARKING) < 0:
                return -1
    return 0


# ---- anchors: IPv4, ICD-10, secret/JWT gates (positions of an ASCII letter or digit that does
# not follow one)

cdef bint _starts_with(const uchar_t* s, Py_ssize_t m, Py_ssize_t p, const char* w, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if p + n > m:
        return False
    for i in range(n):
        if s[p + i] != <uint8_t>w[i]:
            return False
    return True


cdef Py_ssize_t _digit_run(const uchar_t* s, Py_ssize_t m, Py_ssize_t p) noexcept nogil:
    cdef Py_ssize_t q = p
    while q < m and _c(s[q], C_DIGIT):
        q += 1
    return q - p


cdef int _ipv4(const uchar_t* s, Py_ssize_t m, Py_ssize_t p, State* S) noexcept nogil:
    cdef Py_ssize_t q = p, L, i
    cdef int g, v
    cdef bint ok = True
    for g in range(4):
        L = _digit_run(s, m, q)
        if L < 1 or L > 3:
            return 0
        v = 0
        for i in range(L):
            v = v * 10 + <int>s[q + i] - 48
        if v > 255:
            ok = False
        q += L
        if g < 3:
            if q >= m or s[q] != 46:
                return 0
            q += 1
    if q < m and _c(s[q], C_ALNUM):
        return 0
    if q + 1 < m and s[q] == 46 and _c(s[q + 1], C_DIGIT):
        return 0
    if ok:
        return _cand(S, <int32_t>p, <int32_t>q, _IP)
    return 0


cdef Py_ssize_t _icd10(const uchar_t* s, Py_ssize_t m, Py_ssize_t p, State* S) noexcept nogil:
    """ICD-10 code at anchor p; returns the end of the regex match (or p when none)."""
    cdef Py_ssize_t q, r, L
    cdef uint32_t c = s[p]
    if not (65 <= c <= 90) or c == 85:
        return p
    if p + 2 >= m or not _c(s[p + 1], C_DIGIT) or not _c(s[p + 2], C_DIGIT):
        return p
    q = p + 3
    r = q
    if q < m and s[q] == 46:
        L = 0
        while q + 1 + L < m and _c(s[q + 1 + L], C_DIGIT | C_UPPER):
            L += 1
        if 1 <= L <= 4 and not (q + 1 + L < m and _c(s[q + 1 + L], C_LOWER)):
            r = q + 1 + L
    if r == q and q < m and _c(s[q], C_ALNUM):
        return p
    if _context(s, S, 1ULL << B_ICD, p):
        if _cand(S, <int32_t>p, <int32_t>r, _HEALTH_I) < 0:
            return -1
    return r


DEF MAX_PREFIX = 64
cdef uint8_t _PREFIX_FIRST[128]   # 1: some secret prefix (or eyJ) starts with this character
cdef uint64_t _PREFIX_TWO[256]   # 128 x 128 bits: some secret prefix (or eyJ) starts with
                                 # these two ASCII characters (2 KB: stays in cache)

cdef inline bint _prefix_two(uint32_t a, uint32_t b) noexcept nogil:
    """Whether some secret prefix (or eyJ) starts with the ASCII characters a, b."""
    cdef uint32_t k = a * 128 + b
    return (_PREFIX_TWO[k >> 6] >> (k & 63)) & 1
cdef int _NPREFIX = 0
cdef char _PREFIX[MAX_PREFIX][32]
cdef int _PREFIX_LEN[MAX_PREFIX]

def _init_prefixes():
    global _NPREFIX
    _NPREFIX = 0
    for i in range(128):
        _PREFIX_FIRST[i] = 0
    for i in range(128 * 128):
        _PREFIX_TWO[i // 64] = 0
    for i in range(T2_ROWS):
        _T2P[i] = 0
    _PREFIX_FIRST[ord("e")] = 1
    k = ord("e") * 128 + ord("y")
    _PREFIX_TWO[k // 64] |= 1ULL << (k % 64)
    _T2P[_t2_row(ord("e"), ord("y"))] = 1
    for prefix, _, _, _ in _D.SECRET_PATTERNS:
        assert len(prefix) >= 2 and prefix.isascii()
        _PREFIX_FIRST[ord(prefix[0])] = 1
        k = ord(prefix[0]) * 128 + ord(prefix[1])
        _PREFIX_TWO[k // 64] |= 1ULL << (k % 64)
        _T2P[_t2_row(ord(prefix[0]), ord(prefix[1]))] = 1
        b = prefix.encode("ascii")
        # a prefix must start with [A-Za-z0-9]: the look-behind then makes it an anchor
        assert b[:1].isalnum() and len(b) < 32 and _NPREFIX < MAX_PREFIX
        for i, x in enumerate(b):
            _PREFIX[_NPREFIX][i] = x
        _PREFIX_LEN[_NPREFIX] = len(b)
        _NPREFIX += 1
    assert _R._JWT.pattern.startswith("(?<![A-Za-z0-9_-])eyJ")
    assert all(rx.pattern.startswith("(?<![A-Za-z0-9_-])") for _, rx in _R._SECRETS)

_init_prefixes()


cdef void _secret_gate(const uchar_t* s, Py_ssize_t m, Py_ssize_t p, State* S) noexcept nogil:
    cdef int k
    if p + 1 >= m or s[p + 1] >= 128 or not _prefix_two(s[p], s[p + 1]):
        return
    if s[p] == 101 and _starts_with(s, m, p, b"eyJ", 3):
        S.g_jwt = True
    for k in range(_NPREFIX):
        if s[p] == <uint8_t>_PREFIX[k][0] and _starts_with(s, m, p, _PREFIX[k], _PREFIX_LEN[k]):
            S.g_secret = True
            return


# ---- specials: e-mail at '@'; IPv6 runs, URL and password gates at ':' / '='; private keys at '-'

DEF MAX_KEYS = 64
cdef int _NKEYS = 0
cdef uint32_t _KEYS[MAX_KEYS][32]
cdef int _KEY_LEN[MAX_KEYS]

def _init_keys():
    global _NKEYS
    _NKEYS = 0
    for k in _K.PASSWORD_KEYS:
        w = k.lower()
        assert len(w) < 32 and _NKEYS < MAX_KEYS
        assert all(c in " _" or "a" <= c <= "z" or ord(c) >= 128 for c in w), k
        for i, c in enumerate(w):
            _KEYS[_NKEYS][i] = ord(c)
        _KEY_LEN[_NKEYS] = len(w)
        _NKEYS += 1
    assert _R._PASS_KEY.pattern.startswith("(?<![A-Za-z0-9_])(?:") and _R._PASS_KEY.flags & 2

_init_keys()

cdef inline bint _ci(uint32_t c, uint32_t L) noexcept nogil:
    """c may match the key character L under re.IGNORECASE. A superset is enough (this is a gate):
    any non-ASCII character matches a non-ASCII key character."""
    if L >= 128:
        return c >= 128
    if L == 32 or L == 95:
        return c == L
    if c < 128:
        return (c | 0x20) == L and (_CLS[c] & (C_LOWER | C_UPPER))
    return (L == 105 and (c == 0x130 or c == 0x131)) or (L == 115 and c == 0x17F) or \
           (L == 107 and c == 0x212A)

cdef bint _password_gate(const uchar_t* s, Py_ssize_t q) noexcept nogil:
    """Whether a PASSWORD_KEYS key (then an optional quote and spaces) ends right before s[q]."""
    cdef Py_ssize_t r = q - 1, st
    cdef int k, i, L
    while r >= 0 and (s[r] == 32 or s[r] == 9):
        r -= 1
    if r >= 0 and (s[r] == 34 or s[r] == 39):
        r -= 1
    for k in range(_NKEYS):
        L = _KEY_LEN[k]
        st = r - L + 1
        if st < 0:
            continue
        for i in range(L):
            if not _ci(s[st + i], _KEYS[k][i]):
                break
        else:
            if st == 0 or not (_c(s[st - 1], C_ALNUM) or s[st - 1] == 95):
                return True
    return False


cdef Py_ssize_t _MAX_LOCAL = _R._MAX_LOCAL
cdef Py_ssize_t _MAX_DOMAIN = _R._MAX_DOMAIN
cdef Py_ssize_t _MAX_IPV6 = _R._MAX_IPV6

cdef inline bint _local_ch(uint32_t c) noexcept nogil:
    return _isalnum(c) or _c(c, C_LOCAL)

cdef inline bint _domain_ch(uint32_t c) noexcept nogil:
    return _isalnum(c) or c == 46 or c == 45

cdef int _email(const uchar_t* s, Py_ssize_t m, Py_ssize_t a, State* S) noexcept nogil:
    cdef Py_ssize_t st = a, e = a + 1, i, labels = 1, lab = 0, last = a + 1
    # bounded like the reference: a local part over 64 or a domain over 255 characters is none
    while st > 0 and a - st <= _MAX_LOCAL and _local_ch(s[st - 1]):
        st -= 1
    while e < m and e - a - 1 <= _MAX_DOMAIN and _domain_ch(s[e]):
        e += 1
    if a - st > _MAX_LOCAL or e - a - 1 > _MAX_DOMAIN:
        return 0
    while st < a and s[st] == 46:
        st += 1
    while e > a + 1 and (s[e - 1] == 46 or s[e - 1] == 45):
        e -= 1
    if st >= a:
        return 0
    for i in range(a + 1, e):
        if s[i] == 46:
            if lab == 0:
                return 0
            labels += 1
            lab = 0
            last = i + 1
        else:
            lab += 1
    if lab == 0 or labels < 2 or e - last < 2:
        return 0
    for i in range(last, e):
        if not _is_alpha(s[i]):
            return 0
    return _cand(S, <int32_t>st, <int32_t>e, _EMAIL)


cdef int _special(const uchar_t* s, Py_ssize_t m, Py_ssize_t i, State* S, Span** ip6,
                  Py_ssize_t* nip6, Py_ssize_t* capip6, Py_ssize_t* ip6_done) noexcept nogil:
    """E-mail at '@'; IPv6 runs, URL and password gates at ':' / '='; private keys at '-'; the
    sites of URL-encoded values at '%'."""
    cdef Py_ssize_t st, e, colons, k
    cdef uint32_t c = s[i]
    cdef bint hexd
    if c == 37:      # % (first: placed after '-', paired timing was 1-2% slower, by layout alone)
        if i + 2 < m and _c(s[i + 1], C_HEX) and _c(s[i + 2], C_HEX):
            return _enc_site(S, i, i + 3, 1)
        return 0
    if c == 64:      # @
        return _email(s, m, i, S)
    if c == 45:      # -
        if not S.g_pk and _starts_with(s, m, i, b"-----BEGIN ", 11):
            S.g_pk = True
        return 0
    # : or =
    if not S.g_pass and _password_gate(s, i):
        S.g_pass = True
    if c != 58:
        return 0
    if not S.g_url and _starts_with(s, m, i, b"://", 3):
        S.g_url = True
    if i < ip6_done[0]:
        return 0
    # the maximal [0-9A-Fa-f:.] run around this colon
    st = i
    while st > 0 and _c(s[st - 1], C_IP6):
        st -= 1
    e = i
    while e < m and _c(s[e], C_IP6):
        e += 1
    ip6_done[0] = e
    if (st > 0 and _isalnum(s[st - 1])) or (e < m and _isalnum(s[e])):
        return 0
    while st < e and s[st] == 46:
        st += 1
    while e > st and s[e - 1] == 46:
        e -= 1
    if e - st > _MAX_IPV6:
        return 0
    colons = 0
    hexd = False
    for k in range(st, e):
        if s[k] == 58:
            colons += 1
        elif s[k] != 46:
            hexd = True
    if colons < 2 or not hexd:
        return 0
    if nip6[0] == capip6[0] and _grow(<void**>ip6, capip6, sizeof(Span)) < 0:
        return -1
    ip6[0][nip6[0]].s = <int32_t>st
    ip6[0][nip6[0]].e = <int32_t>e
    nip6[0] += 1
    return 0



# classes of code points < 256 for the fused chunk/special pass
DEF K_CH = 1     # chunk character [0-9A-Za-zÑñ]
DEF K_DG = 2     # ASCII digit
DEF K_UP = 4     # A-Z or Ñ
DEF K_NN = 8     # Ñ or ñ
DEF K_SP = 16    # @ : = - %
DEF K_X = 32     # x (a phone extension between digits starts a chunk: 0100x1736)
cdef uint8_t _K1[256]
cdef uint8_t _UPC[256]   # chunk character -> its compact form (upper case; Ñ and ñ -> 0xD1)

def _init_k1():
    cdef int i
    for i in range(256):
        c = chr(i)
        v = 0
        if ("0" <= c <= "9") or ("A" <= c <= "Z") or ("a" <= c <= "z") or c in "Ññ":
            v |= K_CH
        if "0" <= c <= "9":
            v |= K_DG
        if ("A" <= c <= "Z") or c == "Ñ":
            v |= K_UP
        if c in "Ññ":
            v |= K_NN
        if c in "@:=-%":
            v |= K_SP
        if c == "x":
            v |= K_X
        _K1[i] = v
        _UPC[i] = ord(c.upper()) if "a" <= c <= "z" else (0xD1 if c in "Ññ" else i)

_init_k1()


cdef inline int _anchor(const uchar_t* s, Py_ssize_t m, Py_ssize_t x, State* S,
                        Py_ssize_t* icd_next) noexcept nogil:
    """Rules that start at an ASCII letter or digit not preceded by one (IPv4, ICD-10, gates)."""
    cdef uint32_t c = s[x]
    cdef uint32_t prev = s[x - 1] if x > 0 else 0
    cdef Py_ssize_t r
    if _CLS[c] & C_DIGIT:
        if prev != 46 and _ipv4(s, m, x, S) < 0:
            return -1
    else:
        if x >= icd_next[0] and (_CLS[c] & C_UPPER):
            r = _icd10(s, m, x, S)
            if r < 0:
                return -1
            icd_next[0] = r
        if _PREFIX_FIRST[c] and (x == 0 or not _c(prev, C_SECB)):
            _secret_gate(s, m, x, S)
    return 0


cdef inline int _chunk_run(const uchar_t* s, Py_ssize_t m, Py_ssize_t i, Py_ssize_t j, State* S,
                    Py_ssize_t* icd_next, uint8_t orb, uint8_t andb) noexcept nogil:
    """The chunk s[i:j] (or the chunks an x between digits splits it into), with its flags and
    the anchor rules at its start (and after Ñ/ñ inside it)."""
    cdef Py_ssize_t x, a
    cdef int flags = 0
    if orb & K_DG:
        flags |= 1
    if (andb & K_UP) and j - i <= 4:
        flags |= 2
    # anchor rules at a lower-case letter: only the secret gates (ICD-10 needs a capital)
    if s[i] < 128 and (not (_CLS[s[i]] & C_LOWER) or _PREFIX_FIRST[s[i]]):
        if _anchor(s, m, i, S, icd_next) < 0:
            return -1
    if orb & K_NN:   # an ASCII letter or digit right after Ñ/ñ is an anchor too
        for x in range(i + 1, j):
            if (s[x - 1] == 0xD1 or s[x - 1] == 0xF1) and s[x] < 128:
                if _anchor(s, m, x, S, icd_next) < 0:
                    return -1
    if (orb & K_X) and (orb & K_DG) and j - i >= 3:
        # "555-0100x1736": an x between ASCII digits starts a chunk of its own
        a = i
        for x in range(i + 1, j - 1):
            if s[x] == 120 and _c(s[x - 1], C_DIGIT) and _c(s[x + 1], C_DIGIT):
                if _add_chunk(s, m, S, a, x) < 0:
                    return -1
                a = x
        return _add_chunk(s, m, S, a, j)
    if not flags:   # only chunks that may start a window are kept
        return 0
    return _window(s, m, S, i, j)
    return 0


DEF K_TOK = 64   # word-token character
DEF K_HG = 128   # O, l or I (homoglyphs of digits)
cdef uint8_t _L1[256]   # _K1 plus K_TOK and K_HG

def _init_l1():
    cdef int i
    for i in range(256):
        _L1[i] = _K1[i] | (K_TOK if _TOK1[i] else 0) | (K_HG if chr(i) in "OlI" else 0)

_init_l1()


cdef inline uint8_t _lcls(uint32_t c) noexcept nogil:
    if c < 256:
        return _L1[c]
    return K_TOK if (Py_UNICODE_ISALNUM(c) and not Py_UNICODE_ISDECIMAL(c)) else 0


cdef inline int _word1(const Py_UCS1* s, Py_ssize_t m, Py_ssize_t i, Py_ssize_t j, State* S,
                       bint* prev_kept) noexcept nogil:
    """The run s[i:j] of an ASCII letter and lower-case ASCII letters: one token and one chunk.
    What _lex's letters-only path does, for the words most text is made of."""
    cdef Py_ssize_t L = j - i
    cdef uint32_t c = s[i]
    cdef uint32_t c1, r
    cdef int32_t wid = -1
    cdef uint64_t b
    if L > 1:
        # two letters or more (c1 and the last one lower case): one row of _T2 says whether
        # some keyword word starts like this with this length and last letter, _T2P whether
        # some secret prefix may start here
        c1 = s[i + 1]
        r = _t2_row(c, c1)
        if (_T2[r] >> ((s[j - 1] + 41 * <uint64_t>L) & 63)) & 1 and L <= 16:
            wid = _word_id_ascii(s, m, i, L)
        if wid >= 0:
            if _push_token(s, i, j, wid, False, S, prev_kept) < 0:
                return -1
        else:
            prev_kept[0] = False
        if _T2P[r] and _prefix_two(c, c1) and (i == 0 or not _c(s[i - 1], C_SECB)):
            _secret_gate(s, m, i, S)
        return 0
    # one letter: a keyword word of this letter (the _W3 filter keeps one-letter words too)
    b = _w3_bit(c | 0x20, 0, c | 0x20, 1)
    if (_W3[b >> 6] >> (b & 63)) & 1:
        wid = _word_id_ascii(s, m, i, 1)
    if wid >= 0:
        if _push_token(s, i, j, wid, c <= 90, S, prev_kept) < 0:
            return -1
    else:
        prev_kept[0] = False
    # of the anchor rules, a letter can start only the secret and JWT prefixes (ICD-10 needs
    # digits), here with the character after it
    if i + 1 < m and s[i + 1] < 128 and _prefix_two(c, s[i + 1]) and (
            i == 0 or not _c(s[i - 1], C_SECB)):
        _secret_gate(s, m, i, S)
    if 65 <= c <= 90:   # one capital: a chunk that may start a window
        if _window(s, m, S, i, j) < 0:
            return -1
    return 0


cdef Py_ssize_t _accented1(const Py_UCS1* s, Py_ssize_t m, Py_ssize_t i, Py_ssize_t j,
                          State* S, Py_ssize_t* icd_next, bint* prev_kept) noexcept nogil:
    """A word of ASCII letters and accented letters in 1-byte text, s[i:j] being an ASCII letter
    and lower-case ASCII letters and s[j] a byte >= 0x80: what _lex's general path does with it
    (one token; of the chunks, its runs of ASCII letters, only the first can start a window),
    without looking at every byte's classes again. Returns the word's end, 0 when the run has
    another shape (a digit, a capital after the first letter, Ñ or ñ: the general path takes
    it), -1 without memory."""
    cdef Py_ssize_t y = j, x
    cdef uint32_t c
    cdef uint8_t k, o2, a2
    cdef uint64_t b
    cdef int32_t wid
    cdef bint upper = False
    # the shape: accented letters (word characters that are no chunk characters) and runs of
    # lower-case ASCII letters, up to a byte that is neither a word nor a chunk character
    while y < m:
        c = s[y]
        k = _L1[c]
        if c >= 128:
            if (k & (K_CH | K_TOK)) == K_TOK:
                y += 1
                continue
            if k & (K_CH | K_TOK):
                return 0    # Ñ or ñ: a chunk character
            break
        if 97 <= c <= 122:
            # lower-case ASCII letters after an accented one: a chunk whose only anchor rules
            # are the secret gates (what _anchor does there: the look-behind holds after a
            # byte >= 0x80). The gates only set flags: when the general path takes the word
            # after all, it sets the same ones again.
            if _PREFIX_FIRST[c] and y + 1 < m and s[y + 1] < 128 and _prefix_two(c, s[y + 1]):
                _secret_gate(s, m, y, S)
            y = sob_run_end(s, y + 1, m, 97, 122)
            continue
        if k & (K_CH | K_TOK):
            return 0        # a capital or a digit
        break
    # _add_token's filter first, here: most accented words are no keyword word
    # (f0 is an ASCII letter; s[i + 1] and s[y - 1] are lower-case ASCII or accented letters)
    c = _fold_ch(s[y - 1])
    b = _w3_bit(s[i] | 0x20, _fold_ch(s[i + 1]), c, <uint64_t>(y - i))
    wid = -1
    if y - i <= _MAX_WORD_LEN and c and _fold_ch(s[i + 1]) and (_W3[b >> 6] >> (b & 63)) & 1:
        wid = _word_id1(s, i, y, &upper)
    if wid >= 0:
        if _push_token(s, i, y, wid, upper, S, prev_kept) < 0:
            return -1
    else:
        prev_kept[0] = False
    # the chunk s[i:j]: a window only when it is one capital ("Ação"); the anchor rules at its
    # start (at a lower-case letter only the secret gates, as for every later chunk: _anchor
    # calls _secret_gate, which looks no further unless the next byte is ASCII and _prefix_two)
    if 65 <= s[i] <= 90:
        o2 = a2 = _L1[s[i]]
        for x in range(i + 1, j):
            o2 |= _L1[s[x]]
            a2 &= _L1[s[x]]
        if _chunk_run(s, m, i, j, S, icd_next, o2, a2) < 0:
            return -1
    elif _PREFIX_FIRST[s[i]] and s[i + 1] < 128 and _prefix_two(s[i], s[i + 1]) and \
            _anchor(s, m, i, S, icd_next) < 0:
        return -1
    return y


cdef bint _homoglyph_change(const uchar_t* s, Py_ssize_t m, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Whether the homoglyph step of normalization changes the run s[i:j] (a maximal run of
    0-9 O l I in it holds an ASCII digit and one of O l I, and touches no letter). Such runs
    lie inside one run of the lexer: its ends are neither digits nor letters."""
    cdef Py_ssize_t x = i, a
    cdef bint digit, homo
    while x < j:
        if not _homo_run_char(s[x]):
            x += 1
            continue
        a = x
        digit = homo = False
        while x < j and _homo_run_char(s[x]):
            if s[x] <= 57:
                digit = True
            else:
                homo = True
            x += 1
        if digit and homo and (a == 0 or not _is_alpha(s[a - 1])) and \
                (x == m or not _is_alpha(s[x])):
            return True
    return False


# ---- sites of encoded values (step 7): found here, decoded by the reference's own code. The fast
# paths of _lex (a letter then lower-case letters; accented words) hold no site by the rule itself;
# a digit run is checked only from ENC_HEX_MIN digits and other runs from ENC_SITE_MIN characters,
# so ordinary prose pays one compare per run at most.

DEF ENC_SITE_MIN = 12
DEF ENC_HEX_MIN = 14
DEF ENC_HEX_DIGITS_MIN = 20
# the reference's own bounds: fail loudly at import if they change
assert (_R._ENC_SITE_MIN, _R._HEX_MIN, _R._HEX_DIGITS_MIN) == (ENC_SITE_MIN, ENC_HEX_MIN, ENC_HEX_DIGITS_MIN)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define sob_unlikely(x) __builtin_expect(!!(x), 0)
    #else
    #define sob_unlikely(x) (x)
    #endif
    """
    # _lex's two hooks below are rarely taken: their code is laid out of the hot path
    bint sob_unlikely(bint x) noexcept nogil

cdef int _enc_site(State* S, Py_ssize_t a, Py_ssize_t b, int32_t site) noexcept nogil:
    """Keeps s[a:b]: a site (``site`` 1: '%' and two hex digits) or a long run of the lexer (0),
    which _enc_sites replaces by the sites in it."""
    if S.nenc == S.capenc and _grow(<void**>&S.enc, &S.capenc, sizeof(Span)) < 0:
        return -1
    S.enc[S.nenc].s = <int32_t>a
    S.enc[S.nenc].e = <int32_t>b
    S.enc[S.nenc].flags = site
    S.nenc += 1
    return 0


cdef bint _enc_shape(const uchar_t* s, Py_ssize_t a, Py_ssize_t b, uint16_t first, uint16_t rest,
                     bint padded) noexcept nogil:
    """_R.enc_site for the ASCII alphanumeric run s[a:b] (``first``: the _CLS classes of its first
    character, ``rest`` those of the others, or-ed): a lower-case letter and a capital after the
    first character, or (padded) two of lower case, upper case and digits, or hex-shaped (first
    nibbles 2-7, or 2-3 when all digits and shorter than ENC_HEX_DIGITS_MIN). Most long runs
    (IBANs, CURPs) fail at their first character or two."""
    cdef uint16_t every = first | rest
    cdef Py_ssize_t y
    cdef uint32_t c
    cdef bint low_top = True
    if (every & C_LOWER) and (rest & C_UPPER):
        return True
    if padded and ((every & C_LOWER) != 0) + ((every & C_UPPER) != 0) + ((every & C_DIGIT) != 0) >= 2:
        return True
    if b - a < ENC_HEX_MIN or (b - a) % 2:
        return False
    for y in range(a, b, 2):
        c = s[y]
        if c < 50 or c > 55 or not (_CLS[s[y + 1]] & C_HEX):
            return False
        low_top = low_top and c <= 51
    return low_top or (every & (C_LOWER | C_UPPER)) != 0 or b - a >= ENC_HEX_DIGITS_MIN


# _lex calls _enc_site through this pointer: a call gcc cannot inline keeps _lex as small as it
# was, so that its other inlining decisions stay what they were. Paired timing on bench/scan.py's
# corpus (Nov 2026): the exact rule checked inside _lex by a direct call, 4-6% slower than before
# this step; the long runs kept through this pointer and checked by _enc_sites after the lexer
# (IBANs and CURPs fail at their first characters), 1-1.5%.
cdef int (*_enc_long_run)(State*, Py_ssize_t, Py_ssize_t, int32_t) noexcept nogil
_enc_long_run = _enc_site


cdef int _enc_sites(const uchar_t* s, Py_ssize_t m, State* S) noexcept nogil:
    """The long runs the lexer kept in S.enc replaced by the sites among their maximal ASCII
    alphanumeric runs ('%' sites are kept as they are)."""
    cdef Py_ssize_t k, n = S.nenc, x, a, j
    cdef uint16_t first, rest
    cdef Span* runs = S.enc
    if n == 0:
        return 0
    S.enc = NULL
    S.nenc = S.capenc = 0
    for k in range(n):
        x = runs[k].s
        j = runs[k].e
        if runs[k].flags:   # a '%' site
            if _enc_site(S, x, j, 1) < 0:
                free(runs)
                return -1
            continue
        while x < j:
            if not _c(s[x], C_ALNUM):
                x += 1
                continue
            a = x
            first = _CLS[s[x]]
            rest = 0
            x += 1
            while x < j and _c(s[x], C_ALNUM):
                rest |= _CLS[s[x]]
                x += 1
            if x - a >= ENC_SITE_MIN and _enc_shape(s, a, x, first, rest, x < m and s[x] == 61) and \
                    _enc_site(S, a, x, 0) < 0:
                free(runs)
                return -1
    free(runs)
    return 0


cdef int _lex(const uchar_t* s, Py_ssize_t m, State* S, Span** ip6, Py_ssize_t* nip6,
              Py_ssize_t* capip6) noexcept nogil:
    """Words, chunks (with their windows), anchors and special characters in one pass: a run of
    word or chunk characters made only of letters [A-Za-zÑñ] is one token and one chunk; other
    runs are split into their token and chunk sub-runs. In 1-byte text, the runs most text is
    made of (an ASCII letter then lower-case letters; ASCII digits) take a fast path. Returns 0,
    -1 without memory, or -2 when ``S.check_homo`` is set and the homoglyph step would change
    the text."""
    cdef Py_ssize_t i = 0, j, x, y, icd_next = 0, ip6_done = -1
    cdef uint32_t c
    cdef uint8_t k, orb, andb, o2, a2
    cdef bint prev_kept = False, word
    while i < m:
        c = s[i]
        if uchar_t is Py_UCS1:
            k = _L1[c]
        else:
            k = _lcls(c)
        if not (k & (K_CH | K_TOK)):
            if k & K_SP:
                if _special(s, m, i, S, ip6, nip6, capip6, &ip6_done) < 0:
                    return -1
            i += 1
            continue
        j = i + 1
        orb = andb = k
        if uchar_t is Py_UCS1:
            if c < 128 and (k & K_TOK):
                # the common word: an ASCII letter, then lower-case ASCII letters (16 at a time);
                # the next one, after a gap of bytes that start nothing (spaces, most
                # punctuation: the outer loop would only step over them), is taken here too
                while True:
                    j = sob_run_end(s, j, m, 97, 122)
                    word = j == m or not (_L1[s[j]] & (K_CH | K_TOK))
                    if not word:
                        break
                    if _word1(s, m, i, j, S, &prev_kept) < 0:
                        return -1
                    if j + 1 < m and s[j] == 32 and 97 <= s[j + 1] <= 122:
                        # the most common gap: one space, then a lower-case word
                        i = j + 1
                        j = i + 1
                        continue
                    while j < m and _L1[s[j]] == 0:
                        j += 1
                    if not (j < m and s[j] < 128 and (_L1[s[j]] & K_TOK)):
                        break
                    i = j
                    j = i + 1
                if word:
                    i = j
                    continue
                if s[j] >= 128:
                    # an accented word ("comisión", "Câmara", "informação")
                    x = _accented1(s, m, i, j, S, &icd_next, &prev_kept)
                    if x < 0:
                        return -1
                    if x > 0:
                        i = x
                        continue
                orb = andb = _L1[s[i]]
                for x in range(i + 1, j):   # the run goes on: its classes so far
                    orb |= _L1[s[x]]
                    andb &= _L1[s[x]]
            elif k & K_DG:
                # the common number: ASCII digits (8 at a time), a chunk that may start a window;
                # of the anchor rules, only an IPv4 address can start at a digit
                j = sob_run_end(s, j, m, 48, 57)
                if j == m or not (_L1[s[j]] & (K_CH | K_TOK)):
                    if sob_unlikely(j - i >= ENC_HEX_MIN) and (j - i) % 2 == 0 and \
                            50 <= s[i] <= 55 and 50 <= s[i + 2] <= 55 and \
                            _enc_long_run(S, i, j, 0) < 0:
                        return -1   # hex of text may be digits alone (first nibbles 2-7)
                    # an IPv4 address starts with 1-3 digits and a dot
                    if j - i <= 3 and j < m and s[j] == 46 and (i == 0 or s[i - 1] != 46) and \
                            _ipv4(s, m, i, S) < 0:
                        return -1
                    if _window(s, m, S, i, j) < 0:
                        return -1
                    i = j
                    continue
                for x in range(i + 1, j):   # the run goes on: its classes so far
                    orb |= _L1[s[x]]
                    andb &= _L1[s[x]]
        while j < m:
            c = s[j]
            if uchar_t is Py_UCS1:
                k = _L1[c]
            else:
                k = _lcls(c)
            if not (k & (K_CH | K_TOK)):
                break
            orb |= k
            andb &= k
            j += 1
        if S.check_homo and (orb & K_DG) and (orb & K_HG) and _homoglyph_change(s, m, i, j):
            return -2   # the homoglyph step changes this run: see _scan1
        if sob_unlikely(j - i >= ENC_SITE_MIN) and _enc_long_run(S, i, j, 0) < 0:
            return -1   # a long run may be base64 or hex: _enc_sites looks at it after the lexer
        if (andb & K_CH) and (andb & K_TOK):
            # letters only: one token and one chunk
            if _add_token(s, i, j, S, &prev_kept) < 0:
                return -1
            if _chunk_run(s, m, i, j, S, &icd_next, orb, andb) < 0:
                return -1
        else:
            x = i
            if andb & K_TOK:
                # letters only, some of them no chunk character (an accented word): one token
                if _add_token(s, i, j, S, &prev_kept) < 0:
                    return -1
                x = j
            while x < j:
                if not (_lcls(s[x]) & K_TOK):
                    x += 1
                    continue
                y = x + 1
                while y < j and (_lcls(s[y]) & K_TOK):
                    y += 1
                if _add_token(s, x, y, S, &prev_kept) < 0:
                    return -1
                x = y
            x = i
            while x < j:
                k = _lcls(s[x])
                if not (k & K_CH):
                    x += 1
                    continue
                o2 = a2 = k
                y = x + 1
                while y < j:
                    k = _lcls(s[y])
                    if not (k & K_CH):
                        break
                    o2 |= k
                    a2 &= k
                    y += 1
                if not (o2 & (K_DG | K_UP | K_NN | K_X)):
                    # lower-case ASCII letters (a word's part before or after an accented
                    # letter: "informa" of "informação"): no window, and of the anchor rules
                    # only the secret gates
                    if _PREFIX_FIRST[s[x]] and _anchor(s, m, x, S, &icd_next) < 0:
                        return -1
                elif _chunk_run(s, m, x, y, S, &icd_next, o2, a2) < 0:
                    return -1
                x = y
        i = j
    return 0


cdef int _add_chunk(const uchar_t* s, Py_ssize_t m, State* S, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t x
    cdef uint8_t orb = 0, andb = 0xFF, t
    cdef int flags
    for x in range(a, b):
        t = _K1[s[x]]   # chunk characters are all < 256
        orb |= t
        andb &= t
    flags = (1 if orb & K_DG else 0) | (2 if (andb & K_UP) and b - a <= 4 else 0)
    if not flags:
        return 0
    return _window(s, m, S, a, b)
    return 0


# ---- step 2: chunk windows

cdef inline Py_ssize_t _chunk_end(const uchar_t* s, Py_ssize_t m, Py_ssize_t a) noexcept nogil:
    """End of the chunk starting at a: the end of the [0-9A-Za-zÑñ] run, or the next x between
    two ASCII digits (a phone extension starts a chunk)."""
    cdef Py_ssize_t x = a + 1, k
    cdef uint32_t c
    cdef uint64_t x64, y, stop
    if uchar_t is Py_UCS1:
        # 8 at a time: the first byte that is no ASCII letter or digit ends the chunk, unless it
        # is Ñ/ñ or an x came before it (the loop below decides those)
        x64 = _load_le(s, x, m)
        y = x64 & ~HIGHS
        stop = ~((_sw_range(y, 48, 57) | _sw_range(y, 65, 90) | _sw_range(y, 97, 122))
                 & ~(x64 & HIGHS)) & HIGHS
        if stop:
            k = sob_byte(stop)
            if not (_sw_eq(y, 120) & ~(x64 & HIGHS) & ((1ULL << (8 * k)) - 1)) and \
                    (x + k >= m or (s[x + k] != 0xD1 and s[x + k] != 0xF1)):
                return x + k
    while x < m:
        c = s[x]
        if uchar_t is Py_UCS1:
            if not (_K1[c] & K_CH):
                break
        elif not _chunkch(c):
            break
        if c == 120 and x + 1 < m and _c(s[x - 1], C_DIGIT) and _c(s[x + 1], C_DIGIT):
            return x
        x += 1
    return x


# code point < 256 -> 0 no join character, 1 a join character, 3 a join character that is
# whitespace (the gap between a window's chunks, in 1-byte text)
cdef uint8_t _GAP1[256]
# n (0-8) -> the mask of the low n bytes of a 64-bit word
cdef uint64_t _BYTES_MASK[9]

def _init_gap1():
    cdef int i
    for i in range(256):
        _GAP1[i] = 0
        if i < 128 and (_CLS[i] & C_JOIN):
            _GAP1[i] = 3 if chr(i) in " \t\n\r" else 1
    for i in range(9):
        _BYTES_MASK[i] = ~0ULL if i == 8 else (1ULL << (8 * i)) - 1

_init_gap1()


cdef struct Fill:
    # a window's compact value, built up to its chunk ``built`` (lazily: see _window)
    int built
    int filled       # its length so far
    uint8_t andk     # K_DG while every character is an ASCII digit
    uint8_t cb0      # its first character
    uint64_t diff    # nonzero once a character differs from the first
    bint rawdiff     # the text before the homoglyph step gives another value


cdef inline void _fill(const uchar_t* s, Py_ssize_t m, const uchar_t* plain, uint8_t* cb,
                       uint8_t* rb, const Py_ssize_t* ks, const Py_ssize_t* ke, int k,
                       Fill* F) noexcept nogil:
    """The compact value of the window's chunks ks/ke[F.built:k], upper case, appended to cb
    (and the text's before the homoglyph step to rb); chunk characters are all below 256."""
    cdef Py_ssize_t x, je, nb
    cdef uint64_t x64, bm
    cdef uint32_t c
    cdef uint8_t u
    while F.built < k:
        x = ks[F.built]
        je = ke[F.built]
        F.built += 1
        if F.filled == 0:
            F.cb0 = _UPC[s[x]]
        if uchar_t is Py_UCS1:
            if plain == NULL:
                # 8 at a time while they are ASCII (Ñ and ñ, above 0x7F, go one by one below)
                while x < je:
                    x64 = _load_le(s, x, m)
                    nb = je - x if je - x < 8 else 8
                    bm = _BYTES_MASK[nb]
                    if x64 & HIGHS & bm:
                        break
                    x64 &= bm
                    x64 -= _sw_range(x64, 97, 122) >> 2        # lower case -> upper case
                    if (_sw_range(x64, 48, 57) ^ HIGHS) & bm:  # a byte that is no digit
                        F.andk = 0
                    F.diff |= (x64 ^ (F.cb0 * ONES)) & bm
                    sob_store8(cb + F.filled, x64)   # (cb has room for 8 past the longest value)
                    F.filled += nb
                    x += nb
        while x < je:
            c = s[x]
            F.andk &= _K1[c]
            u = _UPC[c]
            cb[F.filled] = u
            F.diff |= u ^ F.cb0
            if plain != NULL:
                rb[F.filled] = _UPC[plain[x]]
                if rb[F.filled] != u:
                    F.rawdiff = True
            F.filled += 1
            x += 1


cdef int _window(const uchar_t* s, Py_ssize_t m, State* S, Py_ssize_t cs, Py_ssize_t ce) noexcept nogil:
    """Step 2 for the chunk s[cs:ce] (it holds an ASCII digit or is 1-4 upper-case letters): the
    windows it starts. Called by _lex as soon as it finds the chunk, while the text around it is
    in cache; the following chunks are found in the text, the context in the tokens before it.
    A window's compact value is built only when a detector may take it: most windows stop on a
    layout prefix without detectors, or on detectors whose context is absent, and never need it."""
    cdef Py_ssize_t j, g, js, je
    cdef const uchar_t* plain = <const uchar_t*>S.plain
    cdef uint8_t cb[72]
    cdef uint8_t rb[72]
    cdef Py_ssize_t ks[10]   # the window's chunks so far: s[ks[q]:ke[q]] (_MAX_CHUNKS <= 10)
    cdef Py_ssize_t ke[10]
    cdef Fill F
    cdef int total, k, L, d, chosen, fallback, q
    cdef Py_ssize_t h = 1   # the trie node of the window's chunk lengths (1: the root)
    cdef bint plus, paren, all_digits, needs, loose_tail, ws, have_ctx
    cdef uint64_t ctxm = 0
    cdef uint64_t free
    have_ctx = False
    plus = cs > 0 and s[cs - 1] == 43 and (cs == 1 or not _isalnum(s[cs - 2]))
    paren = cs > 0 and s[cs - 1] == 40 and ce < m and s[ce] == 41
    total = 0
    k = 0
    F.built = F.filled = 0
    F.andk = K_DG
    F.diff = 0
    F.rawdiff = False
    js = cs
    je = ce
    for j in range(_MAX_CHUNKS):
        loose_tail = False
        if j > 0:
            # no layout goes on from these chunk lengths: the next chunk need not be found
            # (a window after a "+" goes on, on the dead node, for the phone rule)
            if not _LT_MORE[h]:
                if not plus:
                    break
                h = 0
            # the next chunk, found in the text (only chunks that may start a window are
            # stored): right at je after an x split, or after a gap of 1-3 join characters
            g = je
            ws = False
            if g < m and _chunkch(s[g]):
                pass   # an empty gap (x-split chunks) is joined, not whitespace
            else:
                ws = True
                if uchar_t is Py_UCS1:
                    while g < m and g - je <= 3 and _GAP1[s[g]]:
                        ws &= _GAP1[s[g]] >> 1
                        g += 1
                    if g - je > 3 or g >= m or not (_K1[s[g]] & K_CH):
                        break
                else:
                    while g < m and g - je <= 3 and _c(s[g], C_JOIN):
                        if not (s[g] == 32 or s[g] == 9 or s[g] == 10 or s[g] == 13):
                            ws = False
                        g += 1
                    if g - je > 3 or g >= m or not _chunkch(s[g]):
                        break
            js = g
            je = _chunk_end(s, m, js)
            # "123871965 5": a lone last character after whitespace needs context
            loose_tail = j == 1 and je - js == 1 and ws
        L = je - js
        if total + L > _MAX_COMPACT:
            break
        ks[k] = js
        ke[k] = je
        k += 1
        total += L
        # (L <= _MAX_COMPACT < 64; 0: no layout starts with these chunk lengths, and no longer
        # window can match either)
        h = _LT_NEXT[(h << 6) | L]
        if plus:
            # after a "+": the value decides at once whether the phone rule takes the window
            _fill(s, m, plain, cb, rb, ks, ke, k, &F)
            all_digits = (F.andk & K_DG) != 0
            # one character repeated ("111.111.111-11") is never a value: skip this window
            if F.diff == 0:
                if h == 0 and not all_digits:
                    break
                continue
            if all_digits:
                if 8 <= total <= 15 and cb[0] != 48:
                    # from the "(" when one is right before the "+": (+57) 320 715 60 67
                    if _cand(S, <int32_t>(cs - 2 if cs > 1 and s[cs - 2] == 40 else cs - 1),
                             je, _PHONE) < 0:
                        return -1
                continue
        if h == 0:
            break
        if _LT_N[h] == 0:
            continue
        # the detectors that may be taken without a context word; when there are none and no
        # phrase before the window is the context of any of them, the loop below finds nothing
        free = 0
        if not loose_tail:
            free = _LT_DMASK[h] & ~((1ULL << _PHONE) | _LT_ALW[h] | (_LT_CMP[h] if j == 0 else 0))
        if paren and 8 <= total <= 15:
            # (the loop below takes the phone only when every character is a digit)
            free |= _LT_DMASK[h] & (1ULL << _PHONE)
        if not free:
            if not have_ctx:
                ctxm = _context_mask(s, S, cs)
                have_ctx = True
            if not (ctxm & _LT_DMASK[h]):
                continue
        _fill(s, m, plain, cb, rb, ks, ke, k, &F)
        all_digits = (F.andk & K_DG) != 0
        # one character repeated ("111.111.111-11") is never a value: skip this window
        if F.diff == 0:
            continue
        chosen = fallback = -1
        for q in range(_LT_N[h]):
            d = _LT_DETS[_LT_OFF[h] + q]
            # (the window is not one repeated character: see above)
            if d == _PHONE and not (all_digits and 8 <= total <= 15):
                continue
            needs = not ((free >> d) & 1)
            if _ALL_MASK & (1ULL << d):
                if not have_ctx:
                    ctxm = _context_mask(s, S, cs)
                    have_ctx = True
            # a detector that needs context it does not have can be neither the choice nor the
            # fallback: its validator need not run
            if needs and not (ctxm & (1ULL << d)):
                continue
            if d != _PHONE and not _DV[d](cb, total) and not (F.rawdiff and _DV[d](rb, total)):
                continue
            if ctxm & (1ULL << d):
                chosen = d
                break
            if fallback < 0 and not needs:
                fallback = d
        if chosen < 0:
            chosen = fallback
        if chosen >= 0:
            if _cand(S, <int32_t>(cs - 1 if chosen == _PHONE and paren else cs), je,
                     chosen) < 0:
                return -1
    return 0


cdef int _scan_buf(const uchar_t* s, const uchar_t* plain, Py_ssize_t m, State* S, Span** ip6,
                   Py_ssize_t* nip6, Py_ssize_t* capip6) noexcept nogil:
    cdef int rc
    S.plain = plain
    rc = _lex(s, m, S, ip6, nip6, capip6)   # steps 1 and 2, and the anchors and specials
    if rc < 0:
        return rc
    if _enc_sites(s, m, S) < 0:
        return -1
    if _terms(s, m, S) < 0:
        return -1
    return 0


cdef int _scan1(const Py_UCS1* data, Py_ssize_t n, Py_UCS1* out, State* S, Span** ip6,
                Py_ssize_t* nip6, Py_ssize_t* capip6, int32_t** offs, Py_UCS1** plain,
                const Py_UCS1** norm, Py_ssize_t* mp) noexcept nogil:
    """_scan_buf for 1-byte text with its normalization: a copy only when a byte folds (the
    text itself otherwise), and the homoglyph step left to the lexer, which stops at a run the
    step would change (rare); the text is then normalized in full and scanned again. Sets
    ``norm``, ``mp`` (its length) and, as _normalize does, ``offs`` and ``plain``."""
    cdef int rc = _fold1(data, n, out)
    cdef Py_ssize_t m = n
    norm[0] = data if rc == 0 else out
    mp[0] = n
    if rc != 2:
        S.check_homo = True
        rc = _scan_buf(norm[0], <const Py_UCS1*>NULL, n, S, ip6, nip6, capip6)
        S.check_homo = False
        if rc != -2:
            return rc
        # start again on the fully normalized text
        S.ntok = S.ncand = S.nenc = 0
        S.g_secret = S.g_jwt = S.g_pk = S.g_url = S.g_pass = S.g_ip6 = False
        nip6[0] = 0
        m = _normalize1(data, n, out, plain, 3)
    if rc == 2 or m == -2:
        m = _normalize(data, n, out, offs, plain)
    if m < 0:
        return -1
    norm[0] = out
    mp[0] = m
    return _scan_buf(<const Py_UCS1*>out, <const Py_UCS1*>plain[0], m, S, ip6, nip6, capip6)


# ---- step 7: overlaps

cdef int _cmp_cand(const void* a, const void* b) noexcept nogil:
    cdef const Cand* x = <const Cand*>a
    cdef const Cand* y = <const Cand*>b
    if x.tier != y.tier:
        return -1 if x.tier < y.tier else 1
    if (x.e - x.s) != (y.e - y.s):
        return -1 if (x.e - x.s) > (y.e - y.s) else 1
    if x.s != y.s:
        return -1 if x.s < y.s else 1
    if x.d != y.d:
        return -1 if x.d < y.d else 1
    return 0

cdef int _cmp_start(const void* a, const void* b) noexcept nogil:
    cdef const Cand* x = <const Cand*>a
    cdef const Cand* y = <const Cand*>b
    return -1 if x.s < y.s else (1 if x.s > y.s else 0)

cdef inline bint _before(const Cand* x, const Cand* y) noexcept nogil:
    """Whether x comes before y in the reference's order of acceptance (_cmp_cand < 0)."""
    if x.tier != y.tier:
        return x.tier < y.tier
    if (x.e - x.s) != (y.e - y.s):
        return (x.e - x.s) > (y.e - y.s)
    if x.s != y.s:
        return x.s < y.s
    return x.d < y.d


cdef int _sort_by_start(Cand* a, Py_ssize_t n) noexcept nogil:
    """Sort by start with a natural merge sort: the candidates arrive as a few runs that are
    already sorted (one per rule), so this is a few linear merges. -1 without memory."""
    cdef Py_ssize_t i, lo, mid, hi, p, q, o, runs
    cdef Cand* buf
    cdef Cand* src = a
    cdef Cand* dst
    cdef Cand* tmp
    for i in range(1, n):
        if a[i].s < a[i - 1].s:
            break
    else:
        return 0
    buf = <Cand*>malloc(n * sizeof(Cand))
    if buf == NULL:
        return -1
    dst = buf
    while True:
        lo = 0
        runs = 0
        while lo < n:
            mid = lo + 1
            while mid < n and src[mid].s >= src[mid - 1].s:
                mid += 1
            hi = mid
            if mid < n:
                hi = mid + 1
                while hi < n and src[hi].s >= src[hi - 1].s:
                    hi += 1
            p = lo
            q = mid
            o = lo
            while p < mid and q < hi:
                if src[q].s < src[p].s:
                    dst[o] = src[q]
                    q += 1
                else:
                    dst[o] = src[p]
                    p += 1
                o += 1
            if p < mid:
                memcpy(&dst[o], &src[p], (mid - p) * sizeof(Cand))
            if q < hi:
                memcpy(&dst[o], &src[q], (hi - q) * sizeof(Cand))
            runs += 1
            lo = hi
        tmp = src
        src = dst
        dst = tmp
        if runs == 1:
            break
    if src != a:
        memcpy(a, src, n * sizeof(Cand))
    free(buf)
    return 0


DEF SMALL_CLUSTER = 16

cdef Py_ssize_t _resolve(State* S, uint8_t* used) noexcept nogil:
    """Keep the winners in S.cands[0:k], sorted by start; returns k (-1 without memory).
    ``used`` is a zeroed byte per normalized character; it is zeroed again on return.

    The reference accepts candidates greedily in the order of _cmp_cand. Candidates overlap only
    within a *cluster* (a maximal run, by start, of spans each starting before the furthest end
    so far), so the greedy choice is made per cluster; most clusters are one candidate."""
    cdef Py_ssize_t i = 0, j, x, y, k = 0, acc, n = S.ncand
    cdef int32_t far
    cdef Cand* c = S.cands
    cdef Cand t
    cdef bint free_span
    if n == 0:
        return 0
    if _sort_by_start(c, n) < 0:
        return -1
    while i < n:
        far = c[i].e
        j = i + 1
        while j < n and c[j].s < far:
            if c[j].e > far:
                far = c[j].e
            j += 1
        if j - i == 1:
            c[k] = c[i]
            k += 1
            i = j
            continue
        # order of acceptance within the cluster
        if j - i <= SMALL_CLUSTER:
            for x in range(i + 1, j):
                t = c[x]
                y = x
                while y > i and _before(&t, &c[y - 1]):
                    c[y] = c[y - 1]
                    y -= 1
                c[y] = t
        else:
            qsort(&c[i], j - i, sizeof(Cand), _cmp_cand)
        acc = i
        if j - i <= SMALL_CLUSTER:
            # against the winners so far (a per-character map would cost a cache miss or two)
            for x in range(i, j):
                free_span = True
                for y in range(i, acc):
                    if c[x].s < c[y].e and c[y].s < c[x].e:
                        free_span = False
                        break
                if free_span:
                    c[acc] = c[x]
                    acc += 1
        else:
            for x in range(i, j):
                free_span = True
                for y in range(c[x].s, c[x].e):
                    if used[y]:
                        free_span = False
                        break
                if free_span:
                    memset(used + c[x].s, 1, c[x].e - c[x].s)
                    c[acc] = c[x]
                    acc += 1
            for x in range(i, acc):
                memset(used + c[x].s, 0, c[x].e - c[x].s)
        # the winners by start (they do not overlap, so their starts differ)
        if acc - i <= SMALL_CLUSTER:
            for x in range(i + 1, acc):
                t = c[x]
                y = x
                while y > i and t.s < c[y - 1].s:
                    c[y] = c[y - 1]
                    y -= 1
                c[y] = t
        else:
            qsort(&c[i], acc - i, sizeof(Cand), _cmp_start)
        memmove(&c[k], &c[i], (acc - i) * sizeof(Cand))
        k += acc - i
        i = j
    return k


# Scratch buffers kept between calls (page faults on fresh memory cost more than the scan of a
# page). Taken and given back while holding the GIL, so a concurrent call just allocates its own.
DEF KEEP_BYTES = 1 << 24
cdef State _SCRATCH
cdef void* _SCRATCH_OUT = NULL
cdef Py_ssize_t _SCRATCH_OUT_CAP = 0
cdef uint8_t* _SCRATCH_USED = NULL
cdef Py_ssize_t _SCRATCH_USED_CAP = 0
cdef bint _SCRATCH_BUSY = False
memset(&_SCRATCH, 0, sizeof(State))


# Finding objects made the way tuple.__new__(Finding, items) makes them (the type's tp_alloc,
# then the items), without building an argument tuple and calling through Python for each one.
cdef extern from "Python.h":
    ctypedef struct PyObject
    ctypedef struct PyTypeObject:
        PyObject* (*tp_alloc)(PyTypeObject*, Py_ssize_t)
    void PyTuple_SET_ITEM(PyObject*, Py_ssize_t, PyObject*)   # steals the reference
    void PyList_SET_ITEM(object, Py_ssize_t, PyObject*)       # steals the reference
    PyObject* PyLong_FromSsize_t(Py_ssize_t)
    void Py_INCREF(PyObject*)
    void Py_DECREF(PyObject*)
    void PyObject_GC_UnTrack(PyObject*)
    int PyGC_Disable()
    int PyGC_Enable()


from cpython.list cimport PyList_New


cdef list _findings(State* S, Py_ssize_t k, const int32_t* offs):
    """Finding objects for the winners S.cands[0:k] (offsets mapped back through ``offs``)."""
    cdef list res = PyList_New(k)
    cdef PyTypeObject* finding = <PyTypeObject*>Finding
    # Each allocation of a collector-type object counts towards a young-generation collection
    # (one per 700): thousands of Findings would start several, each walking the young objects,
    # while none of them ever enters that generation (untracked below). With the collector off
    # for the loop, the count carries over and the next allocation after it starts just one.
    # (The GIL is held throughout, so no other thread sees the collector off.)
    cdef int gc_was = PyGC_Disable()
    try:
        _make_findings(S, k, offs, res, finding)
    finally:
        if gc_was:
            PyGC_Enable()
    return res


cdef int _make_findings(State* S, Py_ssize_t k, const int32_t* offs, list res,
                        PyTypeObject* finding) except -1:
    cdef Py_ssize_t i, x
    cdef Py_ssize_t a, b
    cdef tuple det
    cdef PyObject* f
    cdef PyObject* item
    cdef PyObject* lo
    cdef PyObject* hi
    for i in range(k):
        det = <tuple>_DET_OUT[S.cands[i].d]
        if offs == NULL:
            a = S.cands[i].s
            b = S.cands[i].e
        else:
            a = offs[S.cands[i].s]
            b = offs[S.cands[i].e - 1] + 1
        f = finding.tp_alloc(finding, 5)
        if f == NULL:
            raise MemoryError()
        for x in range(3):
            item = <PyObject*>det[x]
            Py_INCREF(item)
            PyTuple_SET_ITEM(f, x, item)
        lo = PyLong_FromSsize_t(a)
        hi = PyLong_FromSsize_t(b)
        PyTuple_SET_ITEM(f, 3, lo)
        PyTuple_SET_ITEM(f, 4, hi)
        if lo == NULL or hi == NULL:
            Py_DECREF(f)   # a tuple's dealloc skips NULL items
            raise MemoryError()
        # strings, ints and None cannot form a cycle: the collector need not visit the tuple
        # (it would untrack it at its first pass anyway, as it does every such tuple)
        PyObject_GC_UnTrack(f)
        PyList_SET_ITEM(res, i, f)
    return 0


def scan(str text):
    """Findings in ``text``, sorted by start, not overlapping; offsets index the original text.

    The same function as ``gateway.inspect._scan_py.scan`` (the reference), compiled.
    """
    return _scan(text, True)


def scan_decoded(str text):
    """``scan`` without decoding encoded values (``_scan_py.scan_decoded``)."""
    return _scan(text, False)


cdef object _scan(str text, bint encoded):
    global _SCRATCH, _SCRATCH_BUSY, _SCRATCH_OUT, _SCRATCH_OUT_CAP, _SCRATCH_USED, _SCRATCH_USED_CAP
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), m, k, i
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef void* out = NULL
    cdef void* norm = NULL
    cdef uint8_t* used = NULL
    cdef int32_t* offs = NULL
    cdef State S
    cdef Span* ip6 = NULL
    cdef void* plain = NULL
    cdef Py_ssize_t nip6 = 0, capip6 = 0
    cdef int rc
    cdef bint mine = False
    if n == 0:
        return []
    if n >= 0x7FFFFFFF:
        raise ValueError("text too long for the inspection core")
    memset(&S, 0, sizeof(State))
    if not _SCRATCH_BUSY:
        _SCRATCH_BUSY = mine = True
        S = _SCRATCH
        S.ntok = S.ncand = S.nenc = 0
        # the gates of the last scan (kept with its buffers) are not this text's: left set, every
        # later scan would run the reference's credential rules (and no test could see a gate the
        # lexer missed)
        S.g_secret = S.g_jwt = S.g_pk = S.g_url = S.g_pass = S.g_ip6 = False
        if _SCRATCH_OUT_CAP < (n + 1) * kind:
            PyMem_Free(_SCRATCH_OUT)
            _SCRATCH_OUT = PyMem_Malloc((n + 1) * kind)
            _SCRATCH_OUT_CAP = (n + 1) * kind if _SCRATCH_OUT != NULL else 0
        out = _SCRATCH_OUT
        if _SCRATCH_USED_CAP < n + 1:
            free(_SCRATCH_USED)
            _SCRATCH_USED = <uint8_t*>calloc(n + 1, 1)
            _SCRATCH_USED_CAP = n + 1 if _SCRATCH_USED != NULL else 0
        used = _SCRATCH_USED
    else:
        out = PyMem_Malloc((n + 1) * kind)
        used = <uint8_t*>calloc(n + 1, 1)
    try:
        if out == NULL or used == NULL:
            raise MemoryError()
        norm = out
        with nogil:
            if kind == 1:
                rc = _scan1(<const Py_UCS1*>data, n, <Py_UCS1*>out, &S, &ip6, &nip6, &capip6, &offs,
                            <Py_UCS1**>&plain, <const Py_UCS1**>&norm, &m)
            elif kind == 2:
                m = _normalize(<Py_UCS2*>data, n, <Py_UCS2*>out, &offs, <Py_UCS2**>&plain)
                rc = -1 if m < 0 else _scan_buf(<Py_UCS2*>out, <Py_UCS2*>plain, m, &S, &ip6, &nip6, &capip6)
            else:
                m = _normalize(<uint32_t*>data, n, <uint32_t*>out, &offs, <uint32_t**>&plain)
                rc = -1 if m < 0 else _scan_buf(<uint32_t*>out, <uint32_t*>plain, m, &S, &ip6, &nip6, &capip6)
        if rc < 0:
            raise MemoryError()
        if nip6:
            for i in range(nip6):
                value = PyUnicode_FromKindAndData(kind, <char*>norm + ip6[i].s * kind,
                                                  ip6[i].e - ip6[i].s)
                try:
                    _ipaddress.IPv6Address(value)
                except ValueError:
                    continue
                if _cand(&S, ip6[i].s, ip6[i].e, _IP) < 0:
                    raise MemoryError()
        norm_s = None
        if S.g_secret or S.g_jwt or S.g_pk or S.g_url or S.g_pass:
            # rare: the reference's own credential rules on the normalized text
            extra = []
            norm_s = PyUnicode_FromKindAndData(kind, norm, m)
            _R._credentials(norm_s, extra)
            for a, b, d in extra:
                if _cand(&S, a, b, d) < 0:
                    raise MemoryError()
        if encoded and S.nenc:
            # rare: the reference's own decoding of the sites the lexer found
            if norm_s is None:
                norm_s = PyUnicode_FromKindAndData(kind, norm, m)
            sites = [(S.enc[i].s, S.enc[i].e) for i in range(S.nenc)]
            sites.sort()
            extra = []
            _R.encoded_values(norm_s, None if plain == NULL else PyUnicode_FromKindAndData(kind, plain, m),
                              extra, sites, scan_decoded)
            for a, b, d in extra:
                if _cand(&S, a, b, d) < 0:
                    raise MemoryError()
        k = _resolve(&S, used)
        if k < 0:
            raise MemoryError()
        return _findings(&S, k, offs)
    finally:
        free(offs)
        free(ip6)
        free(plain)
        free(S.enc)
        S.enc = NULL
        S.nenc = S.capenc = 0
        if mine:
            if _SCRATCH_OUT_CAP > KEEP_BYTES:
                PyMem_Free(_SCRATCH_OUT)
                _SCRATCH_OUT = NULL
                _SCRATCH_OUT_CAP = 0
            if _SCRATCH_USED_CAP > KEEP_BYTES:
                free(_SCRATCH_USED)
                _SCRATCH_USED = NULL
                _SCRATCH_USED_CAP = 0
            if S.captok * sizeof(Tok) > KEEP_BYTES:
                free(S.toks); S.toks = NULL; S.captok = 0
            if S.capcand * sizeof(Cand) > KEEP_BYTES:
                free(S.cands); S.cands = NULL; S.capcand = 0
            _SCRATCH = S
            _SCRATCH_BUSY = False
        else:
            PyMem_Free(out)
            free(used)
            free(S.toks)
            free(S.cands)


def _stage_times(str text):
    """Seconds spent in each stage of the scan of a 1-byte ``text`` (for bench/scan.py); the
    stages are those of ``scan`` (credentials and IPv6 validation, when gated in, are left out)."""
    from time import perf_counter
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), m, k
    cdef State S
    cdef Span* ip6 = NULL
    cdef Py_ssize_t nip6 = 0, capip6 = 0
    cdef const Py_UCS1* data = <const Py_UCS1*>PyUnicode_DATA(text)
    cdef const Py_UCS1* norm = data
    cdef Py_UCS1* out = <Py_UCS1*>malloc(n + 1)
    cdef Py_UCS1* plain = NULL
    cdef int32_t* offs = NULL
    cdef uint8_t* used = <uint8_t*>calloc(n + 1, 1)
    cdef int rc
    if PyUnicode_KIND(text) != 1:
        raise ValueError("1-byte text only")
    if out == NULL or used == NULL:
        raise MemoryError()
    memset(out, 0, n + 1)   # page faults outside the timings, as for scan's kept buffers
    memset(&S, 0, sizeof(State))
    times = {}
    t0 = perf_counter()
    rc = _fold1(data, n, out)
    if rc == 1:
        norm = out
    t1 = perf_counter(); times["normalize"] = t1 - t0
    S.check_homo = True
    rc = _lex(norm, n, &S, &ip6, &nip6, &capip6) if rc != 2 else -2
    S.check_homo = False
    m = n
    if rc == -2:   # the rare path of _scan1: full normalization, lexed again
        S.ntok = S.ncand = 0
        nip6 = 0
        m = _normalize(data, n, out, &offs, &plain)
        norm = out
        S.plain = plain
        _lex(norm, m, &S, &ip6, &nip6, &capip6)
    t2 = perf_counter(); times["words+chunks+windows+anchors+specials"] = t2 - t1
    _terms(norm, m, &S)
    t3 = perf_counter(); times["terms"] = t3 - t2
    k = _resolve(&S, used)
    t4 = perf_counter(); times["overlaps"] = t4 - t3
    _findings(&S, k, offs)
    t5 = perf_counter(); times["findings"] = t5 - t4
    free(used)
    free(out); free(plain); free(offs); free(S.toks); free(S.cands); free(ip6); free(S.enc)
    return times
