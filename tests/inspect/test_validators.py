"""Check-digit validators agree with python-stdnum and validate-docbr on thousands of values:
valid ones, the same with one digit changed, and random strings of the right shape."""

from __future__ import annotations

import random
import zlib

import pytest

from gateway.inspect import validators as V
import generators as G

N = 1500


def _safe(fn):
    def ok(s: str) -> bool:
        try:
            return bool(fn(s))
        except Exception:  # noqa: BLE001 - library validators raise on malformed input
            return False
    return ok


def _lib():
    from stdnum import iban, luhn
    from stdnum.ar import cuit
    from stdnum.br import cnpj, cpf
    from stdnum.ca import sin
    from stdnum.cl import rut
    from stdnum.co import nit
    from stdnum.do import cedula
    from stdnum.ec import ci as ec_ci, ruc as ec_ruc
    from stdnum.mx import curp, rfc
    from stdnum.pe import cui, ruc as pe_ruc
    from stdnum.py import ruc as py_ruc
    from stdnum.us import ein, ssn
    from stdnum.uy import rut as uy_rut
    from stdnum.ve import rif
    from validate_docbr import CNH, CNS, PIS, TituloEleitoral

    return {
        "cpf": cpf.is_valid, "cnpj": cnpj.is_valid, "cuit": cuit.is_valid, "cl_rut": rut.is_valid,
        "co_nit": nit.is_valid, "ec_ci": ec_ci.is_valid, "ec_ruc": ec_ruc.is_valid,
        "curp": curp.is_valid, "rfc": lambda v: rfc.is_valid(v, validate_check_digits=True),
        "pe_ruc": pe_ruc.is_valid, "pe_dni": cui.is_valid, "py_ruc": py_ruc.is_valid,
        "uy_rut": uy_rut.is_valid, "ve_rif": rif.is_valid, "ssn": ssn.is_valid, "ein": ein.is_valid,
        "sin": sin.is_valid, "iban": lambda v: iban.is_valid(v, check_country=False), "luhn": luhn.is_valid,
        "do_cedula": lambda v: len(v) == 11 and luhn.is_valid(v),  # stdnum adds a legacy whitelist
        "cns": CNS().validate, "pis": PIS().validate, "cnh": CNH().validate,
        "titulo": TituloEleitoral().validate,
    }


LIB = {k: _safe(v) for k, v in _lib().items()}
UNCHECKED_DIGITS = {"ssn", "ein", "ec_ruc"}  # no check digit (or digits outside it: RUC establishment)


def _shape(name: str, rng: random.Random) -> str:
    """A random string of the validator's usual shape (mostly invalid)."""
    d = lambda n: G._r(rng, n)  # noqa: E731
    return {
        "cpf": lambda: d(11), "cnpj": lambda: d(12) + d(2), "cuit": lambda: rng.choice(("20", "27", "30")) + d(9),
        "cl_rut": lambda: d(rng.choice((7, 8))) + rng.choice("0123456789K"), "co_nit": lambda: d(10),
        "ec_ci": lambda: f"{rng.randrange(1, 25):02d}" + str(rng.randrange(6)) + d(7),
        "ec_ruc": lambda: f"{rng.randrange(1, 25):02d}" + rng.choice("0369") + d(7) + "001",
        "curp": lambda: G.curp(rng)[:17] + d(1), "rfc": lambda: G.rfc(rng)[:-1] + rng.choice(G.DIG + "A"),
        "pe_ruc": lambda: rng.choice(("10", "20")) + d(9), "pe_dni": lambda: d(8) + rng.choice(G.DIG + "KJIH"),
        "py_ruc": lambda: d(rng.randrange(5, 10)), "uy_rut": lambda: f"{rng.randrange(1, 23):02d}" + d(6) + "001" + d(1),
        "ve_rif": lambda: rng.choice("VEJPG") + d(9), "ssn": lambda: d(9), "ein": lambda: d(9),
        "sin": lambda: d(9), "iban": lambda: G.iban(rng).replace(" ", "")[:-1] + d(1),
        "luhn": lambda: d(rng.randrange(8, 20)), "do_cedula": lambda: d(11),
        "cns": lambda: rng.choice("12789") + d(14), "pis": lambda: d(11), "cnh": lambda: d(11),
        "titulo": lambda: d(8) + f"{rng.randrange(1, 29):02d}" + d(2),
    }[name]()


def _valid(name: str, rng: random.Random) -> str:
    gen = {
        "cpf": G.cpf, "cnpj": G.cnpj, "cuit": G.cuit, "cl_rut": G.cl_rut, "co_nit": G.co_nit,
        "ec_ruc": G.ec_ruc, "curp": G.curp, "rfc": G.rfc, "pe_ruc": G.pe_ruc, "uy_rut": G.uy_rut,
        "ve_rif": G.ve_rif, "ssn": G.ssn, "sin": G.sin, "iban": G.iban, "do_cedula": G.do_cedula,
        "cns": G.cns, "pis": G.pis, "cnh": G.cnh, "titulo": G.titulo, "luhn": G.card,
    }.get(name)
    if gen is None:  # no generator: complete a random shape with the library's check
        return G._complete(rng, lambda r: _shape(name, r)[:-1], LIB[name], G.DIG + "K")
    return gen(rng)


def _compact(v: str) -> str:
    return "".join(c for c in v if c.isalnum()).upper()


@pytest.mark.parametrize("name", sorted(LIB))
def test_validator_agrees_with_library(name):
    rng = random.Random(zlib.crc32(name.encode()))
    mine = V.VALIDATORS[name]
    lib = LIB[name]
    valid = [_compact(_valid(name, rng)) for _ in range(N // 5)]
    assert all(lib(v) for v in valid), "generator made a value its library rejects"
    values = valid + [G.corrupt(v, rng) for v in valid] + [_shape(name, rng) for _ in range(N)]
    disagree = [v for v in values if mine(v) != lib(v)]
    assert not disagree, (name, disagree[:5])
    # one digit changed: the check must reject it (unless the library accepts it too)
    if name not in UNCHECKED_DIGITS:
        corrupted = [G.corrupt(v, rng) for v in valid]
        assert sum(mine(c) for c in corrupted) <= len(corrupted) * 0.12


def test_luhn_catches_every_single_digit_change():
    rng = random.Random(5)
    for _ in range(500):
        v = _compact(G.card(rng))
        assert V.card(v) and V.luhn(v)
        assert not V.luhn(G.corrupt(v, rng))


def test_cpf_rejects_repeated_digits_that_pass_the_arithmetic():
    for d in "0123456789":
        assert not V.cpf(d * 11)
        assert not V.cnpj(d * 14)
        assert not V.pis(d * 11)
        assert not V.cnh(d * 11)


def test_alphanumeric_cnpj_of_july_2026():
    from stdnum.br import cnpj

    assert V.cnpj("12ABC34501DE35")
    assert not V.cnpj("12ABC34501DE36")
    rng = random.Random(2)
    for _ in range(300):
        base = G._r(rng, 12, G.DIG + G.UPPER)
        v = base + cnpj.calc_check_digits(base)
        assert V.cnpj(v) == cnpj.is_valid(v) == True  # noqa: E712
        assert not V.cnpj(v[:12] + "A" + v[13])  # check digits stay numeric


def test_clabe_weights_3_7_1():
    assert V.clabe("032180000118359719")
    assert not V.clabe("032180000118359718")


def test_gt_cui_checks_department_and_municipality():
    assert V.gt_cui("2937448150101")  # Σ(2,9,3,7,4,4,8,1 × 2..9) = 203 ≡ 5 mod 11
    assert not V.gt_cui("2937448160101")
    assert not V.gt_cui("2937448152301")  # department 23 does not exist
    assert not V.gt_cui("2937448150118")  # Guatemala (01) has 17 municipalities


def test_itin_groups_of_irs_pub_1915():
    # stdnum accepts only 70-99 minus 89/93; the IRS also issues 50-65
    assert V.itin("912501234") and V.itin("912701234") and V.itin("912941234")
    assert not V.itin("912891234") and not V.itin("912931234") and not V.itin("912661234")
    assert not V.itin("812701234")


def test_uy_ci_check_digit():
    # picandocodigo/ci_uy examples
    assert V.uy_ci("19119365") and V.uy_ci("11111111") is False
    assert not V.uy_ci("19119366")


def test_validators_never_raise_on_garbage():
    rng = random.Random(9)
    alphabet = G.DIG + G.UPPER + "Ñ&- ."
    for name, fn in V.VALIDATORS.items():
        for n in range(0, 36):
            for _ in range(5):
                assert fn(G._r(rng, n, alphabet)) in (True, False)


def test_itin_agrees_with_stdnum_outside_the_groups_it_misses():
    from stdnum.us import itin

    rng = random.Random(12)
    for _ in range(3000):
        v = "9" + G._r(rng, 8)
        group = int(v[3:5])
        if 50 <= group <= 65:
            assert V.itin(v) and not itin.is_valid(v)  # IRS Pub 1915; stdnum lags
        else:
            assert V.itin(v) == itin.is_valid(v), v
