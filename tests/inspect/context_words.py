"""A labelled corpus for the context words that are also ordinary words, and its measurement.

Some acronyms the inspector takes as context (``keywords.CONTEXT``) are everyday words of the
languages it reads: Spanish "sin" (without), Portuguese "nas" (in the), English "set" and "run",
the "cc" of an e-mail, the French "ci" of "ci-joint". For each such word this makes sentences, in
Faker's es_MX, es_CO, pt_BR, en_US and fr_CA, around a value that is valid for the detector the word
serves (check digits from python-stdnum, never from the inspector's own arithmetic) and that is
reported only with context:

- ``a``: after the acronym as it is written for the identifier (``SIN``, ``RUN``, ``C.C.``) or a
  long form in any case (``numéro d'assurance sociale``): must be found;
- ``lower``: after the acronym typed in lower case (``mi rut``, ``nit 9001234567``): shown, not
  required (the price of telling the acronym from the word);
- ``b``: after the same token used as an ordinary word (``pagado sin factura``, ``cc: Ana``,
  ``ci-joint``): must not be reported;
- ``c``: with no context word at all: must not be reported.

    .venv/bin/python tests/inspect/context_words.py [N]   # the table, for both implementations
"""

from __future__ import annotations

import random
from typing import Callable

try:
    import generators as G
except ImportError:  # run from the repository root
    from tests.inspect import generators as G

KINDS = ("a", "lower", "b", "c")

# (co.cc too: "cédula" is a context word of each, and co.cc comes first for 6-10 digits)
_CI = frozenset(("ec.ci", "uy.ci", "py.ci", "bo.ci", "ve.cedula", "cu.ni", "co.cc"))


def _sin(rng):
    from stdnum import luhn
    b = rng.choice("1234567") + G._r(rng, 7)
    return b + luhn.calc_check_digit(b)


def _rut(rng):
    from stdnum.cl import rut
    b = str(rng.randrange(1_000_000, 30_000_000))
    return b + rut.calc_check_digit(b)


def _cc(rng):
    return str(rng.randrange(1, 10)) + G._r(rng, rng.randrange(6, 10))


def _ci(rng):
    return str(rng.randrange(1, 10)) + G._r(rng, rng.randrange(5, 8))


def _py_ruc(rng):
    from stdnum.py import ruc
    b = str(rng.randrange(80_000_000 if rng.random() < .5 else 1_000_000, 99_999_999))[:rng.choice((7, 8))]
    return b + ruc.calc_check_digit(b)


def _nit(rng):
    from stdnum.co import nit
    b = rng.choice(("8", "9")) + G._r(rng, 8)
    return b + nit.calc_check_digit(b)


# group -> (detectors that count as its finding, value generator, {kind: [(locale, template)]})
GROUPS: dict[str, tuple[frozenset[str], Callable[[random.Random], str], dict[str, list[tuple[str, str]]]]] = {
    "ca.sin": (frozenset(("ca.sin",)), _sin, {
        "a": [("en_US", "Employee {name}, SIN {v}."), ("en_US", "SIN: {v}"),
              ("fr_CA", "Employé {name}, NAS : {v}."), ("fr_CA", "NAS {v}, {city}"),
              ("en_US", "social insurance number {v}"),
              ("fr_CA", "Son numéro d'assurance sociale est le {v}.")],
        "lower": [("en_US", "my sin is {v}"), ("fr_CA", "mon nas est le {v}")],
        "b": [("es_MX", "Pagado sin factura, folio {v}."), ("es_MX", "Envío sin costo a {city}, pedido {v}."),
              ("es_CO", "{name} llegó sin retraso; reserva {v}."),
              ("es_MX", "El pedido {name} salió, sin embargo el folio {v} sigue abierto."),
              ("pt_BR", "Confira nas notas de {name} o protocolo {v}."),
              ("pt_BR", "Veja nas faturas o número {v}."),
              ("en_US", "Wasting food is a sin; batch {v} was thrown away."),
              ("es_MX", "pagado sin {v}"), ("es_CO", "{name} se quedó sin {v} pesos de saldo.")],
        "c": [("es_MX", "Pedido {v} enviado a {city}."), ("en_US", "Order {v} shipped to {name}.")],
    }),
    "cl.rut": (frozenset(("cl.rut",)), _rut, {
        "a": [("es_MX", "RUN {v}"), ("es_MX", "Cliente {name}, RUN: {v}."), ("es_CO", "RUT {v}"),
              ("es_MX", "rol único nacional {v}")],
        "lower": [("es_MX", "mi run es {v}"), ("es_MX", "mi rut es {v}")],
        "b": [("en_US", "run the job with seed {v}"), ("en_US", "In the long run, invoice {v} gets paid."),
              ("en_US", "Run migration {v} again."), ("en_US", "{name} will run {v} iterations.")],
        "c": [("en_US", "Seed {v} was used by {name}."), ("es_MX", "Folio {v} de {city}.")],
    }),
    "co.cc": (_CI, _cc, {
        "a": [("es_CO", "C.C. {v}"), ("es_CO", "CC {v}"),
              ("es_CO", "{name}, identificado con C.C. No. {v} de {city}"),
              ("es_CO", "cédula de ciudadanía {v}")],
        "lower": [("es_CO", "cc {v}"), ("es_CO", "c.c. {v}")],
        "b": [("en_US", "cc: {name}\nTicket {v}"), ("es_CO", "cc: {name}; referencia {v}"),
              ("es_CO", "Moto de 150 cc, motor {v}."), ("pt_BR", "Depósito na c/c {v} de {name}."),
              ("fr_CA", "cc : {name}, dossier {v}")],
        "c": [("es_CO", "Factura {v} de {city}."), ("pt_BR", "Pedido {v} entregue.")],
    }),
    "ci": (_CI, _ci, {
        "a": [("es_MX", "C.I. {v}"), ("es_MX", "CI: {v}"), ("es_CO", "{name}, C.I. N° {v}"),
              ("es_MX", "cédula de identidad {v}")],
        "lower": [("es_MX", "ci {v}"), ("es_MX", "c.i. {v}")],
        "b": [("fr_CA", "Vous trouverez ci-joint la facture {v}."), ("fr_CA", "Voir ci-dessous le dossier {v}."),
              ("fr_CA", "Celle-ci porte le numéro {v}."), ("en_US", "The ci job {v} failed for {name}."),
              ("en_US", "ci: {v} builds this week")],
        "c": [("fr_CA", "La facture {v} de {name}."), ("es_MX", "Pedido {v} de {city}.")],
    }),
    "py.ruc": (frozenset(("py.ruc",)), _py_ruc, {
        "a": [("es_MX", "SET: {v}"), ("es_MX", "Constancia de la SET {v}"),
              ("es_MX", "registro único del contribuyente {v}")],
        "lower": [("es_MX", "set {v}")],
        "b": [("en_US", "set the timeout to {v} ms"), ("en_US", "Please set aside order {v} for {name}."),
              ("en_US", "a set of {v} rows"), ("fr_CA", "Le set de {name} a coûté {v} $."),
              ("en_US", "set {v} as the limit for {name}")],
        "c": [("en_US", "The timeout is {v} ms."), ("es_MX", "Pedido {v} de {name}.")],
    }),
    "co.nit": (frozenset(("co.nit", "br.pis")), _nit, {
        "a": [("es_CO", "NIT {v}"), ("es_CO", "{name} S.A.S., NIT: {v}"),
              ("es_CO", "número de identificación tributaria {v}")],
        "lower": [("es_CO", "nit {v}"), ("es_CO", "Nit: {v}")],
        "b": [("en_US", "nit: rename the constant {v}"), ("en_US", "nit: move {v} into the config"),
              ("en_US", "Nit: the magic number {v} deserves a name."),
              ("en_US", "nit: {v} should be a named constant")],
        "c": [("en_US", "The constant {v} is unused."), ("es_CO", "Radicado {v} de {city}.")],
    }),
}
"""Group (a detector, or the family a context word serves) → (its detectors, a generator of values
that need context to be reported, sentence templates per kind)."""


def sentences(group: str, kind: str, n: int, seed: int = 0):
    """``n`` ``(text, value)`` pairs of ``kind`` for ``group``, reproducible from ``seed``."""
    _, gen, templates = GROUPS[group]
    rng = random.Random(f"{group}/{kind}/{seed}")
    out = []
    for i in range(n):
        locale, template = templates[kind][i % len(templates[kind])]
        f = G.faker(locale, rng)
        v = gen(rng)
        out.append((template.format(name=f.name(), city=f.city(), v=v), v))
    return out


def rate(scan, group: str, kind: str, n: int, seed: int = 0) -> float:
    """Share of ``n`` sentences of ``kind`` where ``scan`` reports one of the group's detectors
    exactly on the value."""
    detectors = GROUPS[group][0]
    hits = 0
    for text, v in sentences(group, kind, n, seed):
        s = text.index(v)
        hits += any(f.detector in detectors and (f.start, f.end) == (s, s + len(v)) for f in scan(text))
    return hits / n


def report(n: int = 200, seed: int = 0) -> str:
    """Per group and implementation: recall on ``a`` and ``lower``, the share of ``b`` and ``c``
    reported (false positives), and precision over ``a`` + ``b`` + ``c`` (n sentences each)."""
    import importlib

    lines = [f"{'impl':8} {'group':8} {'recall a':>9} {'lower':>7} {'FP b':>7} {'FP c':>7} {'precision':>9}"]
    for impl in ("_scan_py", "_scan_c"):
        scan = importlib.import_module(f"gateway.inspect.{impl}").scan
        for group in GROUPS:
            r = {k: rate(scan, group, k, n, seed) for k in KINDS}
            tp, fp = r["a"] * n, (r["b"] + r["c"]) * n
            prec = tp / (tp + fp) if tp + fp else 1.0
            lines.append(f"{impl:8} {group:8} {r['a']:9.1%} {r['lower']:7.1%} {r['b']:7.1%} {r['c']:7.1%} "
                         f"{prec:9.1%}")
    return "\n".join(lines)


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    print(report(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
