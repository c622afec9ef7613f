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

cdef bint v_luhn(cstr s, int n) noexcept nogil:
    """Luhn over all n digits (the last one is the check digit)."""
    cdef int i, x, total = 0
    cdef bint dbl = False
    if n < 2 or not _all_digits(s, n):
        return False
    i = n - 1
    while i >= 0:
        x = s[i] - 48
        if dbl:
            x *= 2
            if x > 9:
                x -= 9
        total += x
        dbl = not dbl
        i -= 1
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
cdef int _IIN_N = 0
cdef int _IIN_LO[MAX_IIN]
cdef int _IIN_HI[MAX_IIN]
cdef int _IIN_W[MAX_IIN]
cdef unsigned int _IIN_LEN[MAX_IIN]

cdef bint v_card(cstr s, int n) noexcept nogil:
    """Payment card: 13-19 digits in an issuer range of CARD_IIN_RANGES, Luhn."""
    cdef int k, i, p
    if n < 13 or n > 19 or not _all_digits(s, n):
        return False
    for k in range(_IIN_N):
        if not (_IIN_LEN[k] >> n) & 1:
            continue
        p = 0
        for i in range(_IIN_W[k]):
            p = p * 10 + _d(s, i)
        if _IIN_LO[k] <= p <= _IIN_HI[k]:
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
from libc.stdint cimport int32_t, uint8_t, uint16_t

cdef extern from "Python.h":
    ctypedef uint8_t Py_UCS1
    ctypedef uint16_t Py_UCS2
    bint Py_UNICODE_ISALPHA(Py_UCS4 ch) nogil
    object PyUnicode_FromKindAndData(int kind, const void *buffer, Py_ssize_t size)

ctypedef fused uchar_t:
    Py_UCS1
    Py_UCS2
    Py_UCS4

DEF FOLD_LIMIT = 0x20000
DEF DROP = 0xFF

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
        _FOLD[ord(c)] = DROP
    assert N.HOMOGLYPHS == {"O": "0", "l": "1", "I": "1"}, "homoglyph table changed: update the core"

_init_fold()


cdef inline bint _is_alpha(Py_UCS4 c) noexcept nogil:
    if c < 128:
        return (65 <= c <= 90) or (97 <= c <= 122)
    return Py_UNICODE_ISALPHA(c)


cdef inline bint _homo_run_char(Py_UCS4 c) noexcept nogil:
    return (48 <= c <= 57) or c == 79 or c == 108 or c == 73   # 0-9 O l I


cdef Py_ssize_t _normalize(const uchar_t* src, Py_ssize_t n, uchar_t* out,
                           int32_t* offsets) noexcept nogil:
    """Write the normalized text to ``out`` and each character's original index to ``offsets``
    (plus ``offsets[m] = n``); return its length m. ``out``/``offsets`` hold n (+1) entries."""
    cdef Py_ssize_t i, m = 0, j, k
    cdef Py_UCS4 c
    cdef uint8_t f
    cdef bint digit, homo
    for i in range(n):
        c = src[i]
        if c >= 0x80 and c < FOLD_LIMIT:
            f = _FOLD[c]
            if f == DROP:
                continue
            if f:
                c = f
        out[m] = <uchar_t>c
        offsets[m] = <int32_t>i
        m += 1
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
            for k in range(i, j):
                if out[k] == 79:
                    out[k] = 48
                elif out[k] > 57:
                    out[k] = 49
        i = j
    return m


def normalize(str text):
    """``(norm, offsets)`` exactly as ``gateway.inspect.normalize.normalize`` returns them."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), m
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef void* out = PyMem_Malloc((n + 1) * kind)
    cdef int32_t* offs = <int32_t*>PyMem_Malloc((n + 1) * sizeof(int32_t))
    if out == NULL or offs == NULL:
        PyMem_Free(out)
        PyMem_Free(offs)
        raise MemoryError()
    try:
        if kind == 1:
            m = _normalize(<Py_UCS1*>data, n, <Py_UCS1*>out, offs)
        elif kind == 2:
            m = _normalize(<Py_UCS2*>data, n, <Py_UCS2*>out, offs)
        else:
            m = _normalize(<Py_UCS4*>data, n, <Py_UCS4*>out, offs)
        norm = PyUnicode_FromKindAndData(kind, out, m)
        return norm, [offs[i] for i in range(m + 1)]
    finally:
        PyMem_Free(out)
        PyMem_Free(offs)

from gateway.inspect._scan_py import scan as _ref


def scan(str text):
    """Findings in ``text``, sorted by start, not overlapping."""
    return _ref(text)
