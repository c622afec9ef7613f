"""Check digits and structural checks of identifiers (REFERENCE.md section 1).

Every validator takes the *compact* value: upper case, separators removed (``Ñ`` stays ``Ñ``), and
returns a bool. None raises; none allocates more than a few ints. They are written as integer loops
over character codes so that the compiled core can mirror them one to one; the Cython twin keeps the
same names (``_scan_c.check(name, value)``). :data:`VALIDATORS` maps those names to functions.
"""

from __future__ import annotations

from typing import Callable

from gateway.inspect.detectors import CARD_IIN_RANGES, IBAN_LENGTHS

_DIGITS = frozenset("0123456789")


def _digits(s: str) -> bool:
    return bool(s) and all(c in _DIGITS for c in s)


def _same(s: str) -> bool:
    return len(set(s)) <= 1


def _d(s: str, i: int) -> int:
    return ord(s[i]) - 48


def luhn(s: str) -> bool:
    """Luhn over every digit; the last one is the check digit."""
    if len(s) < 2 or not _digits(s):
        return False
    total = 0
    for k, c in enumerate(reversed(s)):
        x = ord(c) - 48
        if k % 2:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return total % 10 == 0


def cpf(s: str) -> bool:
    """BR CPF: 11 digits, two mod-11 check digits, not all the same digit."""
    if len(s) != 11 or not _digits(s) or _same(s):
        return False
    t = sum(_d(s, i) * (10 - i) for i in range(9))
    d1 = (11 - t % 11) % 11 % 10
    t = sum(_d(s, i) * (11 - i) for i in range(9)) + 2 * d1
    d2 = (11 - t % 11) % 11 % 10
    return d1 == _d(s, 9) and d2 == _d(s, 10)


_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_ALNUM_UP = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def cnpj(s: str) -> bool:
    """BR CNPJ, numeric and alphanumeric (July 2026): value of a character is ord(c) - 48; the two
    check digits stay numeric. All-zero bases and all-same numeric values are rejected."""
    if len(s) != 14 or not all(c in _ALNUM_UP for c in s[:12]) or not _digits(s[12:]):
        return False
    if _digits(s[:12]) and (s[:12] == "0" * 12 or _same(s)):
        return False
    t = sum((ord(s[i]) - 48) * _CNPJ_W1[i] for i in range(12))
    d1 = (11 - t % 11) % 11 % 10
    t = sum((ord(s[i]) - 48) * _CNPJ_W2[i] for i in range(12)) + d1 * _CNPJ_W2[12]
    d2 = (11 - t % 11) % 11 % 10
    return d1 == _d(s, 12) and d2 == _d(s, 13)


def cns(s: str) -> bool:
    """BR Cartão Nacional de Saúde: 15 digits, Σ d_i·(15−i) ≡ 0 mod 11. Definitive cards (first
    digit 1 or 2) are a PIS plus ``000`` and a check digit, or ``001`` and one when the plain check
    would be 10 (validate-docbr); provisional cards start with 7, 8 or 9."""
    if len(s) != 15 or not _digits(s) or s[0] not in "12789":
        return False
    if s[0] in "12":
        r = sum(_d(s, i) * (15 - i) for i in range(11)) % 11
        if s[11:14] != ("001" if r == 1 else "000"):
            return False
    return sum(_d(s, i) * (15 - i) for i in range(15)) % 11 == 0


_PIS_W = (3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def pis(s: str) -> bool:
    """BR PIS/PASEP/NIS/NIT: 11 digits, one mod-11 check digit."""
    if len(s) != 11 or not _digits(s) or _same(s):
        return False
    r = sum(_d(s, i) * _PIS_W[i] for i in range(10)) % 11
    return (0 if r < 2 else 11 - r) == _d(s, 10)


def cnh(s: str) -> bool:
    """BR CNH (validate-docbr's algorithm)."""
    if len(s) != 11 or not _digits(s) or _same(s):
        return False
    d1 = sum(_d(s, i) * (9 - i) for i in range(9)) % 11
    dsc = 0
    if d1 >= 10:
        d1, dsc = 0, 2
    d2 = sum(_d(s, i) * (i + 1) for i in range(9)) % 11 - dsc
    if d2 < 0:
        d2 += 11
    if d2 >= 10:
        d2 = 0
    return d1 == _d(s, 9) and d2 == _d(s, 10)


def titulo(s: str) -> bool:
    """BR título de eleitor: 12 digits, UF code 01-28 in digits 9-10, two check digits."""
    if len(s) != 12 or not _digits(s):
        return False
    uf = _d(s, 8) * 10 + _d(s, 9)
    if uf < 1 or uf > 28:
        return False
    d1 = sum(_d(s, i) * (i + 2) for i in range(8)) % 11
    if d1 == 10:
        d1 = 0
    d2 = (_d(s, 8) * 7 + _d(s, 9) * 8 + d1 * 9) % 11
    if d2 == 10:
        d2 = 0
    return d1 == _d(s, 10) and d2 == _d(s, 11)


def rg(s: str) -> bool:
    """BR RG (context-only detector): 7-9 digits, the last may be X; not all the same digit."""
    if not 7 <= len(s) <= 9 or not _digits(s[:-1]) or not (s[-1] in _DIGITS or s[-1] == "X"):
        return False
    return not _same(s)


_CURP_ALPHA = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"
_RFC_ALPHA = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ"
CURP_STATES = frozenset(
    "AS BC BS CC CH CL CM CS DF DG GR GT HG JC MC MN MS NE NL NT OC PL QR QT "
    "SL SP SR TC TL TS VZ YN ZS".split())
"""Two-letter codes of the CURP birth states (``NE`` = born abroad), as in python-stdnum."""


def _upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _valid_date(yy: int, mm: int, dd: int, century: int) -> bool:
    year = century + yy
    if mm < 1 or mm > 12 or dd < 1:
        return False
    if mm == 2:
        mdays = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    elif mm in (4, 6, 9, 11):
        mdays = 30
    else:
        mdays = 31
    return dd <= mdays


def curp(s: str) -> bool:
    """MX CURP: ``[A-Z]{4}\\d{6}[HM]<state>[A-Z]{3}[0-9A-Z]\\d``, a real date and the check digit.
    Position 17 is a digit for births before 2000 and a letter after."""
    if len(s) != 18 or not all(_upper(c) for c in s[:4]) or not _digits(s[4:10]):
        return False
    if s[10] not in "HM" or not all(_upper(c) for c in s[11:16]) or s[11:13] not in CURP_STATES:
        return False
    if s[16] not in _ALNUM_UP or s[17] not in _DIGITS:
        return False
    century = 1900 if s[16] in _DIGITS else 2000
    if not _valid_date(_d(s, 4) * 10 + _d(s, 5), _d(s, 6) * 10 + _d(s, 7),
                       _d(s, 8) * 10 + _d(s, 9), century):
        return False
    t = sum(_CURP_ALPHA.index(s[i]) * (18 - i) for i in range(17))
    return (10 - t % 10) % 10 == _d(s, 17)


def rfc(s: str) -> bool:
    """MX RFC with homoclave: persona física (13) or moral (12); a real date (leap years by the
    2000 rule) and the check character."""
    n = len(s)
    if n == 13:
        pre = 4
    elif n == 12:
        pre = 3
    else:
        return False
    if not all(_upper(c) or c in "&Ñ" for c in s[:pre]) or not _digits(s[pre:pre + 6]):
        return False
    if not all(c in _ALNUM_UP for c in s[pre + 6:]):
        return False
    if not _valid_date(_d(s, pre) * 10 + _d(s, pre + 1), _d(s, pre + 2) * 10 + _d(s, pre + 3),
                       _d(s, pre + 4) * 10 + _d(s, pre + 5), 2000):
        return False
    padded = " " * (13 - n) + s  # left-pad with spaces to 12 characters before the check digit
    t = sum(_RFC_ALPHA.index(padded[i]) * (13 - i) for i in range(12))
    return _RFC_ALPHA[(11 - t % 11 + 11) % 11] == s[-1]


def nss(s: str) -> bool:
    """MX NSS (IMSS): 11 digits, Luhn."""
    return len(s) == 11 and luhn(s)


def clabe(s: str) -> bool:
    """MX CLABE: 18 digits, weights 3,7,1 (each product mod 10)."""
    if len(s) != 18 or not _digits(s):
        return False
    w = (3, 7, 1)
    t = sum((_d(s, i) * w[i % 3]) % 10 for i in range(17))
    return (10 - t % 10) % 10 == _d(s, 17)


def ine(s: str) -> bool:
    """MX INE clave de elector (context-only): ``[A-Z]{6}\\d{8}[HM]\\d{3}``."""
    return (len(s) == 18 and all(_upper(c) for c in s[:6]) and _digits(s[6:14])
            and s[14] in "HM" and _digits(s[15:]))


_CUIT_W = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def cuit(s: str) -> bool:
    """AR CUIT/CUIL: prefix 20/23/24/27/30/33/34, weights 5432765432, 11→0, 10→9."""
    if len(s) != 11 or not _digits(s) or s[:2] not in ("20", "23", "24", "27", "30", "33", "34"):
        return False
    dv = 11 - sum(_d(s, i) * _CUIT_W[i] for i in range(10)) % 11
    dv = 0 if dv == 11 else 9 if dv == 10 else dv
    return dv == _d(s, 10)


def digits_id(s: str) -> bool:
    """Context-only numeric identifiers (AR DNI, CO CC, PY/BO CI, ...): digits, not all the same."""
    return _digits(s) and not _same(s)


def cl_rut(s: str) -> bool:
    """CL RUT/RUN: a body of 7-8 digits and a check character 0-9 or K (mod 11, weights 2-7)."""
    n = len(s)
    if n < 8 or n > 9 or not _digits(s[:-1]):
        return False
    t, w = 0, 2
    for i in range(n - 2, -1, -1):
        t += _d(s, i) * w
        w = 2 if w == 7 else w + 1
    r = 11 - t % 11
    dv = "0" if r == 11 else "K" if r == 10 else chr(48 + r)
    return s[-1] == dv


_NIT_W = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)


def co_nit(s: str) -> bool:
    """CO NIT: 8-16 digits, prime weights from the right, DV = r if r < 2 else 11 - r."""
    n = len(s)
    if n < 8 or n > 16 or not _digits(s):
        return False
    r = sum(_d(s, n - 2 - i) * _NIT_W[i] for i in range(n - 1)) % 11
    return (r if r < 2 else 11 - r) == _d(s, n - 1)


_PE_W = (3, 2, 7, 6, 5, 4, 3, 2)


def pe_dni(s: str) -> bool:
    """PE DNI/CUI: 8 digits, optionally followed by its check character (digit or letter)."""
    if len(s) not in (8, 9) or not _digits(s[:8]) or _same(s[:8]):
        return False
    if len(s) == 8:
        return True
    c = sum(_d(s, i) * _PE_W[i] for i in range(8)) % 11
    return s[8] == "65432110987"[c] or s[8] == "KJIHGFEDCBA"[c]


def pe_ruc(s: str) -> bool:
    """PE RUC: 11 digits, prefix 10/15/17/20, DV = (11 - r) mod 10."""
    if len(s) != 11 or not _digits(s) or s[:2] not in ("10", "15", "17", "20"):
        return False
    return (11 - sum(_d(s, i) * _CUIT_W[i] for i in range(10)) % 11) % 10 == _d(s, 10)


def _ec_province(s: str) -> bool:
    p = _d(s, 0) * 10 + _d(s, 1)
    return 1 <= p <= 24 or p in (30, 50)


def _ec_ci_sum(s: str) -> bool:
    t = 0
    for i in range(10):
        x = _d(s, i) * (2 if i % 2 == 0 else 1)
        t += x - 9 if x > 9 else x
    return t % 10 == 0


def ec_ci(s: str) -> bool:
    """EC cédula: 10 digits, province 01-24/30/50, third digit ≤ 6, coefficients 2,1,2,1..."""
    return (len(s) == 10 and _digits(s) and _ec_province(s) and _d(s, 2) <= 6
            and _ec_ci_sum(s))


_EC_PUB_W = (3, 2, 7, 6, 5, 4, 3, 2, 1)
_EC_JUR_W = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def _ec_mod11(s: str, w: tuple[int, ...]) -> bool:
    return sum(_d(s, i) * w[i] for i in range(len(w))) % 11 == 0


def ec_ruc(s: str) -> bool:
    """EC RUC: 13 digits; natural person (cédula + establishment), public (d3 = 6) or juridical
    (d3 = 9) entity."""
    if len(s) != 13 or not _digits(s) or not _ec_province(s):
        return False
    natural = s[10:] != "000" and _d(s, 2) <= 6 and _ec_ci_sum(s)
    public = s[9:] != "0000" and _ec_mod11(s, _EC_PUB_W)
    juridical = s[10:] != "000" and _ec_mod11(s, _EC_JUR_W)
    t = _d(s, 2)
    if t < 6:
        return natural
    if t == 6:
        return public or natural
    if t == 9:
        return public or juridical
    return False


_UY_CI_W = (2, 9, 8, 7, 6, 3, 4)


def uy_ci(s: str) -> bool:
    """UY cédula: 7 or 8 digits (body padded to 7 on the left) and a check digit."""
    n = len(s)
    if n not in (7, 8) or not _digits(s) or _same(s):
        return False
    off = 8 - n
    t = sum(_d(s, i) * _UY_CI_W[i + off] for i in range(n - 1))
    return (10 - t % 10) % 10 == _d(s, n - 1)


_UY_RUT_W = (4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def uy_rut(s: str) -> bool:
    """UY RUT: 12 digits, d1-2 01-22, d3-8 not all zero, d9-11 = 001, mod-11 check digit."""
    if len(s) != 12 or not _digits(s):
        return False
    p = _d(s, 0) * 10 + _d(s, 1)
    if p < 1 or p > 22 or s[2:8] == "000000" or s[8:11] != "001":
        return False
    return (11 - sum(_d(s, i) * _UY_RUT_W[i] for i in range(11)) % 11) % 11 == _d(s, 11)


def py_ruc(s: str) -> bool:
    """PY RUC: up to 9 digits including the check digit (weights 2, 3, 4, ... from the right)."""
    n = len(s)
    if n < 2 or n > 9 or not _digits(s) or _same(s):
        return False
    t = sum(_d(s, n - 2 - i) * (i + 2) for i in range(n - 1))
    return ((11 - t % 11) % 11) % 10 == _d(s, n - 1)


_RIF_TYPE = {"V": 4, "E": 8, "J": 12, "P": 16, "G": 20}


def ve_rif(s: str) -> bool:
    """VE RIF: a type letter V/E/J/P/G, 8 digits and a check digit."""
    if len(s) != 10 or s[0] not in _RIF_TYPE or not _digits(s[1:]):
        return False
    t = _RIF_TYPE[s[0]] + sum(_d(s, i + 1) * _PE_W[i] for i in range(8))
    return "00987654321"[t % 11] == s[9]


def ve_cedula(s: str) -> bool:
    """VE cédula (context-only): V or E and 6-8 digits, or 6-8 digits."""
    body = s[1:] if s[:1] in ("V", "E") else s
    return 6 <= len(body) <= 8 and digits_id(body)


GT_MUNICIPALITIES = (17, 8, 16, 16, 13, 14, 19, 8, 24, 21, 9, 30, 32, 21, 8, 17, 14, 5, 11, 11, 7, 17)
"""Municipalities per department of Guatemala (RENAP), departments 01-22."""


def gt_cui(s: str) -> bool:
    """GT DPI/CUI: 8 digits, a check digit (Σ d_i·(i+2) mod 11), department 01-22, municipality."""
    if len(s) != 13 or not _digits(s):
        return False
    dept = _d(s, 9) * 10 + _d(s, 10)
    muni = _d(s, 11) * 10 + _d(s, 12)
    if dept < 1 or dept > 22 or muni < 1 or muni > GT_MUNICIPALITIES[dept - 1]:
        return False
    return sum(_d(s, i) * (i + 2) for i in range(8)) % 11 == _d(s, 8)


def do_cedula(s: str) -> bool:
    """DO cédula: 11 digits, Luhn."""
    return len(s) == 11 and luhn(s) and not _same(s)


def cr_cedula(s: str) -> bool:
    """CR cédula (context-only): 9 or 10 digits, province 1-9 (10 digits: a leading 0)."""
    if not _digits(s) or _same(s):
        return False
    if len(s) == 10:
        return s[0] == "0" and s[1] != "0"
    return len(s) == 9 and s[0] != "0"


def pa_cedula(s: str) -> bool:
    """PA cédula (context-only), compact: a prefix (PE, E, N, or a province 1-13 optionally
    followed by AV or PI) then 2-10 digits (the folio and the asiento)."""
    if s[:2] == "PE":
        rest = s[2:]
    elif s[:1] in ("E", "N"):
        rest = s[1:]
    else:  # a province of one or two digits: either reading will do, the detector needs context
        return any(s[:i].isdigit() and s[:i].isascii() and 1 <= int(s[:i]) <= 13
                   and _pa_rest(s[i + 2:] if s[i:i + 2] in ("AV", "PI") else s[i:])
                   for i in (1, 2))
    return _pa_rest(rest)


def _pa_rest(rest: str) -> bool:
    return 2 <= len(rest) <= 10 and digits_id(rest)


def cu_ni(s: str) -> bool:
    """CU número de identidad (context-only): 11 digits starting with a real YYMMDD date."""
    if len(s) != 11 or not _digits(s):
        return False
    return _valid_date(_d(s, 0) * 10 + _d(s, 1), _d(s, 2) * 10 + _d(s, 3),
                       _d(s, 4) * 10 + _d(s, 5), 2000)


_SSN_PUBLISHED = frozenset(("078051120", "457555462", "219099999"))


def ssn(s: str) -> bool:
    """US SSN: area not 000/666/9xx, group not 00, serial not 0000, not a famous published number."""
    if len(s) != 9 or not _digits(s):
        return False
    area = int(s[:3])
    if area == 0 or area == 666 or area >= 900 or s[3:5] == "00" or s[5:] == "0000":
        return False
    return s not in _SSN_PUBLISHED


def itin(s: str) -> bool:
    """US ITIN: 9XX-G-XXXX, group 50-65, 70-88, 90-92 or 94-99 (IRS Pub 1915)."""
    if len(s) != 9 or not _digits(s) or s[0] != "9":
        return False
    g = int(s[3:5])
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


EIN_PREFIXES = frozenset(
    "01 02 03 04 05 06 10 11 12 13 14 15 16 20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37 38 "
    "39 40 41 42 43 44 45 46 47 48 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 71 "
    "72 73 74 75 76 77 80 81 82 83 84 85 86 87 88 90 91 92 93 94 95 98 99".split())
"""Valid IRS campus prefixes of an EIN (python-stdnum ``us/ein.dat``)."""


def ein(s: str) -> bool:
    """US EIN: 9 digits with a valid campus prefix."""
    return len(s) == 9 and _digits(s) and s[:2] in EIN_PREFIXES and not _same(s[2:])


def sin(s: str) -> bool:
    """CA SIN: 9 digits, Luhn, first digit not 0 or 8."""
    return len(s) == 9 and _digits(s) and s[0] not in "08" and luhn(s)


def card(s: str) -> bool:
    """Payment card: 13-19 digits, an issuer range of :data:`CARD_IIN_RANGES`, Luhn."""
    n = len(s)
    if n < 13 or n > 19 or not _digits(s):
        return False
    for lo, hi, width, lengths in CARD_IIN_RANGES:
        if n in lengths and lo <= int(s[:width]) <= hi:
            return luhn(s)
    return False


def iban(s: str) -> bool:
    """IBAN: a country of :data:`IBAN_LENGTHS` with its exact length, 2 check digits, mod 97 = 1."""
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not _digits(s[2:4]):
        return False
    r = 0
    for c in s[4:] + s[:4]:
        if c in _DIGITS:
            r = (r * 10 + ord(c) - 48) % 97
        elif "A" <= c <= "Z":
            r = (r * 100 + ord(c) - 55) % 97
        else:
            return False
    return r == 1


VALIDATORS: dict[str, Callable[[str], bool]] = {
    f.__name__: f for f in (
        luhn, cpf, cnpj, cns, pis, cnh, titulo, rg, curp, rfc, nss, clabe, ine, cuit, digits_id,
        cl_rut, co_nit, pe_dni, pe_ruc, ec_ci, ec_ruc, uy_ci, uy_rut, py_ruc, ve_rif, ve_cedula,
        gt_cui, do_cedula, cr_cedula, pa_cedula, cu_ni, ssn, itin, ein, sin, card, iban)
}
"""Validator name → function; detectors name their validator by these keys."""
