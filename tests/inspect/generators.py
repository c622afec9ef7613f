"""Generated identifiers, evasion forms and look-alikes, for tests, benchmarks and the compiled core.

Every generator takes a ``random.Random`` so runs are reproducible. Valid values come from the
reference libraries (python-stdnum, validate-docbr) wherever they can compute a check digit, so the
inspector is never graded by its own arithmetic.

    import generators  # from tests in this folder (pytest puts it on sys.path)
    from tests.inspect.generators import VALID, recall  # from the repository root
"""

from __future__ import annotations

import base64
import random
from typing import Callable

DIG = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _r(rng: random.Random, n: int, alphabet: str = DIG) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _not_same(rng: random.Random, n: int) -> str:
    while True:
        s = _r(rng, n)
        if len(set(s)) > 1:
            return s


def _complete(rng: random.Random, body: Callable[[random.Random], str], valid: Callable[[str], bool],
              last: str = DIG) -> str:
    """``body(rng)`` plus the check character that makes ``valid`` hold (retrying bodies)."""
    while True:
        b = body(rng)
        for c in last:
            try:
                if valid(b + c):
                    return b + c
            except Exception:  # noqa: BLE001 - library validators raise on bad input
                pass


# ----------------------------------------------------------------------------- valid values
# detector id -> (generator of a *printed* valid value, context word the detector needs or "")

def cpf(rng):
    from stdnum.br import cpf as m
    b = _not_same(rng, 9)
    v = b + m._calc_check_digits(b)
    return m.format(v) if rng.random() < .7 else v


def cnpj(rng):
    from stdnum.br import cnpj as m
    alpha = rng.random() < .3
    b = _r(rng, 8, DIG + UPPER if alpha else DIG) + "0001"
    v = b + m.calc_check_digits(b)
    return m.format(v) if rng.random() < .7 else v


def cns(rng):
    from validate_docbr import CNS
    return CNS().generate(mask=rng.random() < .5)


def pis(rng):
    from validate_docbr import PIS
    return PIS().generate(mask=True)


def cnh(rng):
    from validate_docbr import CNH
    return CNH().generate()


def titulo(rng):
    from validate_docbr import TituloEleitoral
    return TituloEleitoral().generate(mask=rng.random() < .5)


def curp(rng):
    from stdnum.mx import curp as m
    from gateway.inspect.validators import CURP_STATES

    def body(r):
        yy, mm, dd = r.randrange(100), r.randrange(1, 13), r.randrange(1, 29)
        return (_r(r, 4, UPPER) + f"{yy:02d}{mm:02d}{dd:02d}" + r.choice("HM")
                + r.choice(sorted(CURP_STATES)) + _r(r, 3, UPPER) + r.choice(DIG + UPPER))
    return _complete(rng, body, m.is_valid)


def rfc(rng):
    from stdnum.mx import rfc as m

    def body(r):
        yy, mm, dd = r.randrange(100), r.randrange(1, 13), r.randrange(1, 29)
        return _r(r, r.choice((3, 4)), UPPER) + f"{yy:02d}{mm:02d}{dd:02d}" + _r(r, 2, UPPER + DIG)
    return _complete(rng, body, lambda v: m.is_valid(v, validate_check_digits=True), DIG + "A")


def clabe(rng):
    # python-stdnum has no CLABE: weights 3, 7, 1 (each product mod 10), DV = (10 - Σ mod 10) mod 10
    b = _r(rng, 17)
    t = sum((int(b[i]) * (3, 7, 1)[i % 3]) % 10 for i in range(17))
    return b + str((10 - t % 10) % 10)


def cuit(rng):
    from stdnum.ar import cuit as m
    b = rng.choice(("20", "23", "24", "27", "30", "33")) + _r(rng, 8)
    v = b + m.calc_check_digit(b)
    return m.format(v) if rng.random() < .7 else v


def cl_rut(rng):
    from stdnum.cl import rut as m
    b = str(rng.randrange(1_000_000, 30_000_000))
    return m.format(b + m.calc_check_digit(b))


def co_nit(rng):
    from stdnum.co import nit as m
    b = _r(rng, 9)
    return m.format(b + m.calc_check_digit(b))


def pe_ruc(rng):
    from stdnum.pe import ruc as m
    b = rng.choice(("10", "15", "17", "20")) + _r(rng, 8)
    return b + m.calc_check_digit(b)


def ec_ruc(rng):
    from stdnum.ec import ruc as m
    return _complete(rng, lambda r: f"{r.randrange(1, 25):02d}9" + _r(r, 9), m.is_valid)


def uy_rut(rng):
    from stdnum.uy import rut as m
    while True:
        b = f"{rng.randrange(1, 23):02d}" + _not_same(rng, 6) + "001"
        dv = m.calc_check_digit(b)
        if len(dv) == 1:  # a body whose check would be 10 has no valid RUT
            return b + dv


def gt_cui(rng):
    from gateway.inspect.validators import GT_MUNICIPALITIES
    dept = rng.randrange(1, 23)
    muni = rng.randrange(1, GT_MUNICIPALITIES[dept - 1] + 1)
    b = _r(rng, 8)
    dv = sum(int(b[i]) * (i + 2) for i in range(8)) % 11
    if dv == 10:
        return gt_cui(rng)
    v = f"{b}{dv}{dept:02d}{muni:02d}"
    return f"{v[:4]} {v[4:9]} {v[9:]}" if rng.random() < .5 else v


def ve_rif(rng):
    from stdnum.ve import rif as m
    b = rng.choice("VEJPG") + _r(rng, 8)
    v = b + m.calc_check_digit(b)
    return f"{v[0]}-{v[1:9]}-{v[9]}" if rng.random() < .5 else v


def do_cedula(rng):
    from stdnum import luhn
    b = _r(rng, 10)
    v = b + luhn.calc_check_digit(b)
    return f"{v[:3]}-{v[3:10]}-{v[10]}"


_FAKERS: dict = {}


def faker(locale: str, rng: random.Random):
    """A Faker of ``locale`` (one per process) reseeded from ``rng``."""
    if locale not in _FAKERS:
        from faker import Faker
        _FAKERS[locale] = Faker(locale)
    f = _FAKERS[locale]
    f.seed_instance(rng.randrange(2**31))
    return f


def ssn(rng):
    return faker("en_US", rng).ssn()


def sin(rng):
    return faker("en_CA", rng).ssn()


def card(rng):
    from stdnum import luhn
    prefix, n = rng.choice((("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                            ("6011", 16), ("3528", 16), ("62", 16), ("4", 13)))
    b = prefix + _r(rng, n - len(prefix) - 1)
    v = b + luhn.calc_check_digit(b)
    if n == 16 and rng.random() < .6:
        return " ".join(v[i:i + 4] for i in range(0, 16, 4))
    return v


def iban(rng):
    from stdnum import iban as m
    country, bban_len = rng.choice((("DE", 18), ("GB", 18), ("ES", 20), ("FR", 23), ("BR", 25),
                                    ("NL", 14), ("PT", 21)))
    if country == "GB":
        bban = _r(rng, 4, UPPER) + _r(rng, 14)
    elif country == "NL":
        bban = _r(rng, 4, UPPER) + _r(rng, 10)
    elif country == "BR":
        bban = _r(rng, 23) + "C1"
    else:
        bban = _r(rng, bban_len)
    v = country + m.calc_check_digits(country + "00" + bban) + bban
    return m.format(v) if rng.random() < .6 else v


VALID: dict[str, tuple[Callable[[random.Random], str], str]] = {
    "br.cpf": (cpf, ""), "br.cnpj": (cnpj, ""), "br.cns": (cns, ""), "br.pis": (pis, "PIS"),
    "br.cnh": (cnh, "CNH"), "br.titulo": (titulo, ""), "mx.curp": (curp, ""), "mx.rfc": (rfc, ""),
    "mx.clabe": (clabe, ""), "ar.cuit": (cuit, ""), "cl.rut": (cl_rut, ""), "co.nit": (co_nit, ""),
    "pe.ruc": (pe_ruc, "RUC"), "ec.ruc": (ec_ruc, ""), "uy.rut": (uy_rut, ""), "gt.cui": (gt_cui, "DPI"),
    "ve.rif": (ve_rif, ""), "do.cedula": (do_cedula, ""), "us.ssn": (ssn, ""), "ca.sin": (sin, "SIN"),
    "intl.card": (card, ""), "intl.iban": (iban, ""),
}
"""Detector id → (generator of a valid printed value, the context word it is written after).

A context word is given where the detector needs one, or where the same digits are just as valid an
identifier of another country (an 11-digit RUC starting 20 is usually a valid CUIT too: the same
weights; a GT CUI may be a valid EC RUC): there the word is what tells them apart."""


def sample(detector: str, rng: random.Random) -> tuple[str, str]:
    """``(sentence, value)``: a valid value of ``detector`` in a short sentence with its context."""
    gen, word = VALID[detector]
    value = gen(rng)
    lead = rng.choice(("Dados: ", "Datos del titular ", "Record ", "Le numéro ", ""))
    ctx = f"{word} " if word else ""
    return f"{lead}{ctx}{value} fim.", value


# ----------------------------------------------------------------------------- evasion forms

FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
EVASIONS = ("fullwidth", "zero_width", "soft_hyphen", "nbsp", "thin_space", "line_break",
            "spaces", "homoglyph", "math_digits", "base64", "hex", "url")
"""Names of the evasion forms :func:`evade` applies."""


def evade(value: str, form: str, rng: random.Random) -> str:
    """``value`` disguised by one evasion form (the inspector must still find it)."""
    if form == "fullwidth":
        return "".join(FULLWIDTH.get(c, c) for c in value)
    if form == "base64":
        return base64.b64encode(value.encode()).decode()
    if form == "hex":
        h = value.encode().hex()
        return h.upper() if rng.random() < .5 else h
    if form == "url":  # some characters (at least one, and every space: a URL holds none) as %XX
        spots = {rng.randrange(len(value))} | {i for i, c in enumerate(value) if c == " " or rng.random() < .4}
        return "".join((f"%{ord(c):02X}" if rng.random() < .5 else f"%{ord(c):02x}") if i in spots else c
                       for i, c in enumerate(value))
    if form == "math_digits":  # MATHEMATICAL BOLD DIGITs, NFKC-folded to ASCII
        return "".join(chr(0x1D7CE + int(c)) if c in DIG else c for c in value)
    if form in ("zero_width", "soft_hyphen"):
        inv = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"] if form == "zero_width" else ["\u00ad"]
        out = []
        for i, c in enumerate(value):
            out.append(c)
            if i < len(value) - 1 and rng.random() < .5:
                out.append(rng.choice(inv))
        return "".join(out)
    seps = ".-/ "
    if form in ("nbsp", "thin_space", "line_break", "spaces"):
        sub = {"nbsp": "\u00a0", "thin_space": rng.choice(("\u2009", "\u202f")), "line_break": "\n",
               "spaces": " "}[form]
        return "".join(sub if c in seps else c for c in value)
    if form == "homoglyph":
        # inside runs of digits (not touching letters), keeping one real digit in each run
        out = list(value)
        i = 0
        while i < len(value):
            if value[i] not in DIG:
                i += 1
                continue
            j = i
            while j < len(value) and value[j] in DIG:
                j += 1
            edge = (i > 0 and value[i - 1].isalpha()) or (j < len(value) and value[j].isalpha())
            spots = [k for k in range(i, j) if value[k] in "01"]
            if not edge and spots and j - i >= 2:
                keep = rng.randrange(i, j)
                for k in spots:
                    if k != keep and rng.random() < .5:
                        out[k] = "O" if value[k] == "0" else rng.choice("lI")
            i = j
        return "".join(out)
    raise ValueError(form)


def corrupt(value: str, rng: random.Random) -> str:
    """``value`` with one digit changed (a check digit must catch most of these)."""
    idx = [i for i, c in enumerate(value) if c in DIG]
    i = rng.choice(idx)
    d = rng.choice([x for x in DIG if x != value[i]])
    return value[:i] + d + value[i + 1:]


# ----------------------------------------------------------------------------- measurement

def recall(scan, detector: str, form: str | None, n: int, seed: int = 0) -> float:
    """Share of ``n`` generated sentences where ``scan`` reports ``detector`` exactly on the value
    (after the evasion ``form``, if any)."""
    rng = random.Random(seed)
    hit = 0
    for _ in range(n):
        gen, word = VALID[detector]
        value = gen(rng)
        if form:
            value = evade(value, form, rng)
        text = f"Dados: {word + ' ' if word else ''}{value} fim."
        start = text.index(value)
        if any(f.detector == detector and f.start == start and f.end == start + len(value)
               for f in scan(text)):
            hit += 1
    return hit / n


def false_positive_rate(scan, detector: str, n: int, seed: int = 0) -> float:
    """Share of ``n`` look-alikes (a valid value with one digit changed, failing its check) for
    which ``scan`` reports ``detector``."""
    from gateway.inspect.validators import VALIDATORS
    from gateway.inspect.detectors import BY_ID

    validate = VALIDATORS[BY_ID[detector].validator]
    rng = random.Random(seed)
    hits = tries = 0
    while tries < n:
        gen, word = VALID[detector]
        bad = corrupt(gen(rng), rng)
        compact = "".join(c for c in bad if c.isalnum()).upper()
        if validate(compact):  # the change happened to keep the check: not a look-alike
            continue
        tries += 1
        text = f"Dados: {word + ' ' if word else ''}{bad} fim."
        hits += any(f.detector == detector for f in scan(text))
    return hits / n


def report(n: int = 200, seed: int = 0) -> str:
    """A table of recall (plain and per evasion form) and look-alike false positives per detector,
    for every implementation that loads: ``python tests/inspect/generators.py [N]``."""
    import importlib

    impls = {}
    for name in ("_scan_py", "_scan_c"):
        try:
            impls[name] = importlib.import_module(f"gateway.inspect.{name}").scan
        except ImportError:
            pass
    lines = []
    for impl, scan in impls.items():
        lines.append(f"{impl}: recall on {n} values per cell, false positives on {n} look-alikes")
        lines.append(f"{'detector':12} {'plain':>6} " + " ".join(f"{f[:8]:>8}" for f in EVASIONS)
                     + f" {'FP':>6}")
        for det in sorted(VALID):
            row = [recall(scan, det, None, n, seed)] + [recall(scan, det, f, n, seed) for f in EVASIONS]
            fp = false_positive_rate(scan, det, n, seed)
            lines.append(f"{det:12} {row[0]:6.1%} " + " ".join(f"{r:8.1%}" for r in row[1:])
                         + f" {fp:6.1%}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", ".."))
    print(report(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
