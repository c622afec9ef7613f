"""The detector catalogue: what the inspector looks for, as plain data.

:data:`DETECTORS` lists every detector in **priority order**: when several detectors accept the same
window of text, the first listed whose context word is present is reported, else the first listed
that needs no context (see the algorithm in ``_scan_py``). Each one has
an id (SPEC section 6), a category, the ISO country of the data subject (``None`` for ``intl.``,
``secret.``, ``gov.`` and ``health.``), the placeholder label, the *shapes* it accepts, the name of
its validator (``gateway.inspect.validators.VALIDATORS``) and whether it needs a context word
(``gateway.inspect.keywords.CONTEXT``).

A shape is a tuple of chunk-length ranges ``((lo, hi), ...)``: the value is that many maximal
alphanumeric chunks joined by separators, the i-th chunk having lo..hi characters. ``((11, 11),)``
is a CPF written without separators, ``((3, 3), (3, 3), (3, 3), (2, 2))`` one written
``529.982.247-25`` (or with spaces, line breaks, ... in place of the dots and the dash).

Detectors whose ``scanner`` is not ``"window"`` have no shapes: a dedicated rule of the scanner
finds them (e-mail, IP, secrets, markings, health terms), described in ``_scan_py``.

The tables at the end (card issuer ranges, IBAN lengths, secret prefixes) are plain tuples and dicts
so the compiled core can turn them into C arrays at import.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.inspect.keywords import CONTEXT


class Detector(NamedTuple):
    """One kind of sensitive value."""

    id: str
    """``<country>.<name>``, ``intl.<name>``, ``secret.<name>``, ``gov.<name>`` or ``health.term``."""
    category: str
    """A category of SPEC section 6."""
    country: str | None
    """ISO 3166-1 alpha-2 of the data subject's country, or None."""
    label: str
    """Placeholder label, e.g. ``CPF`` in ``[CPF_1]``."""
    scanner: str
    """``window`` (chunk windows with shapes) or the name of a dedicated rule: ``email``,
    ``ipv4``, ``ipv6``, ``api_key``, ``jwt``, ``private_key``, ``password``, ``marking``,
    ``health``."""
    shapes: tuple[tuple[tuple[int, int], ...], ...] = ()
    """Accepted chunk layouts (window detectors only)."""
    validator: str | None = None
    """Name in ``VALIDATORS``; it gets the compact value (chunks joined, upper case)."""
    context: str = "none"
    """``none``; ``always`` (a context word must precede the value); ``compact`` (only the
    one-chunk form needs one: ``52998224725`` vs ``529.982.247-25``)."""
    tier: int = 1
    """Overlap tier: 0 for credentials, which win over anything they overlap; 1 otherwise."""

    @property
    def keywords(self) -> tuple[str, ...]:
        """Context words and phrases (folded), from ``keywords.CONTEXT``."""
        return CONTEXT.get(self.id, ())


def S(*layouts: str) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Shapes from compact notation: ``S("11", "3,3,3,2", "1-2,3,3,1")``."""
    out = []
    for layout in layouts:
        groups = []
        for g in layout.split(","):
            lo, _, hi = g.partition("-")
            groups.append((int(lo), int(hi or lo)))
        out.append(tuple(groups))
    return tuple(out)


IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
"""IBAN length per country (SWIFT IBAN registry, as python-stdnum's ``iban.dat``)."""


def _iban_shapes() -> tuple[tuple[tuple[int, int], ...], ...]:
    # compact, and printed in groups of four with a shorter last group
    out = []
    for n in sorted(set(IBAN_LENGTHS.values())):
        out.append(((n, n),))
        groups = [(4, 4)] * (n // 4) + ([(n % 4, n % 4)] if n % 4 else [])
        out.append(tuple(groups))
    return tuple(out)


CARD_IIN_RANGES: tuple[tuple[int, int, int, tuple[int, ...]], ...] = (
    # (first prefix, last prefix, prefix width, card lengths); the first range that holds decides
    (4, 4, 1, (13, 16, 19)),                       # Visa (and Elo/Visa co-brands)
    (51, 55, 2, (16,)),                            # Mastercard
    (2221, 2720, 4, (16,)),                        # Mastercard 2-series
    (34, 34, 2, (15,)), (37, 37, 2, (15,)),        # American Express
    (6011, 6011, 4, (16, 17, 18, 19)),             # Discover
    (644, 649, 3, (16, 17, 18, 19)),               # Discover
    (65, 65, 2, (16, 17, 18, 19)),                 # Discover, Elo 65xxxx
    (300, 305, 3, (14, 15, 16, 17, 18, 19)),       # Diners Club
    (36, 36, 2, (14, 15, 16, 17, 18, 19)),         # Diners Club
    (38, 39, 2, (14, 15, 16, 17, 18, 19)),         # Diners Club, Hipercard 384xxx
    (3528, 3589, 4, (16, 17, 18, 19)),             # JCB
    (2200, 2204, 4, (16, 17, 18, 19)),             # Mir
    (62, 62, 2, (16, 17, 18, 19)),                 # UnionPay
    (50, 50, 2, (13, 14, 15, 16, 17, 18, 19)),     # Maestro, Elo 50xxxx, Carnet
    (56, 58, 2, (13, 14, 15, 16, 17, 18, 19)),     # Maestro
    (60, 60, 2, (16, 17, 18, 19)),                 # Hipercard 606282, RuPay
    (63, 63, 2, (13, 14, 15, 16, 17, 18, 19)),     # Maestro, Elo 636xxx
    (67, 67, 2, (13, 14, 15, 16, 17, 18, 19)),     # Maestro
)
"""Payment card issuer ranges (ISO/IEC 7812 IINs of the major networks and the Latin American ones)."""

SECRET_PATTERNS: tuple[tuple[str, str, int, int], ...] = (
    # (prefix, body characters, min body length, max body length; 0 = unbounded)
    ("sk-ant-", "A-Za-z0-9_-", 20, 0),             # Anthropic
    ("sk-proj-", "A-Za-z0-9_-", 20, 0),            # OpenAI project keys
    ("sk-", "A-Za-z0-9_-", 20, 0),                 # OpenAI
    ("AKIA", "A-Z0-9", 16, 16),                    # AWS access key id
    ("ASIA", "A-Z0-9", 16, 16),                    # AWS temporary access key id
    ("ghp_", "A-Za-z0-9", 36, 0),                  # GitHub tokens
    ("gho_", "A-Za-z0-9", 36, 0),
    ("ghu_", "A-Za-z0-9", 36, 0),
    ("ghs_", "A-Za-z0-9", 36, 0),
    ("ghr_", "A-Za-z0-9", 36, 0),
    ("github_pat_", "A-Za-z0-9_", 22, 0),
    ("AIza", "A-Za-z0-9_-", 35, 35),               # Google API key
    ("xoxa-", "A-Za-z0-9-", 10, 0),                # Slack
    ("xoxb-", "A-Za-z0-9-", 10, 0),
    ("xoxp-", "A-Za-z0-9-", 10, 0),
    ("xoxr-", "A-Za-z0-9-", 10, 0),
    ("xoxs-", "A-Za-z0-9-", 10, 0),
    ("sk_live_", "A-Za-z0-9", 16, 0),              # Stripe
    ("sk_test_", "A-Za-z0-9", 16, 0),
    ("rk_live_", "A-Za-z0-9", 16, 0),
    ("rk_test_", "A-Za-z0-9", 16, 0),
)
"""API key prefixes. A key is the prefix, not preceded by ``[A-Za-z0-9_-]``, followed by a maximal
run of body characters whose length is within the bounds."""

PHONE_SHAPES = S("2-4,4-5,4", "3,3,4", "1-3,3,3,4", "4,3,4", "2,2,2,2,2", "2,3,3,2,2", "3,3,2,2", "2,4,3,3",
                 "10-12", "4-5,4", "2,2,4-5,4", "1-3,2-4,4-5,4")
"""National phone layouts: ``(11) 91234-5678``, ``415 555 0100``, ``1-415-555-0100``, ``0800 479
0167``, ``01 23 45 67 89``, ``57 328 835 43 43``, ..."""

_W = "window"

DETECTORS: tuple[Detector, ...] = (
    # credentials first: tier 0 wins every overlap
    Detector("secret.private_key", "credentials", None, "PRIVATE_KEY", "private_key", tier=0),
    Detector("secret.jwt", "credentials", None, "JWT", "jwt", tier=0),
    Detector("secret.api_key", "credentials", None, "API_KEY", "api_key", tier=0),
    Detector("secret.password", "credentials", None, "PASSWORD", "password", tier=0),
    Detector("intl.email", "contact", None, "EMAIL", "email"),
    # Brazil
    Detector("br.cnpj", "tax_id", "BR", "CNPJ", _W, S("14", "2,3,3,4,2", "8,4,2", "12,2"), "cnpj"),
    Detector("br.cpf", "national_id", "BR", "CPF", _W, S("11", "3,3,3,2", "9,2"), "cpf"),
    Detector("br.cns", "health_id", "BR", "CNS", _W, S("15", "3,4,4,4"), "cns"),
    Detector("br.titulo", "national_id", "BR", "TITULO", _W, S("12", "4,4,4"), "titulo"),
    # Mexico
    Detector("mx.curp", "national_id", "MX", "CURP", _W, S("18"), "curp"),
    Detector("mx.rfc", "tax_id", "MX", "RFC", _W, S("12", "13", "4,6,3", "3,6,3"), "rfc"),
    Detector("mx.clabe", "financial", "MX", "CLABE", _W, S("18", "3,3,11,1"), "clabe"),
    Detector("mx.nss", "national_id", "MX", "NSS", _W, S("11", "2,2,2,4,1"), "nss", "compact"),
    # tax and national identifiers with a check digit
    Detector("ar.cuit", "tax_id", "AR", "CUIT", _W, S("11", "2,8,1"), "cuit"),
    Detector("pe.ruc", "tax_id", "PE", "RUC", _W, S("11"), "pe_ruc"),
    Detector("ec.ruc", "tax_id", "EC", "RUC", _W, S("13", "10,3"), "ec_ruc"),
    Detector("uy.rut", "tax_id", "UY", "RUT", _W, S("12", "2,6,3,1"), "uy_rut"),
    Detector("gt.cui", "national_id", "GT", "CUI", _W, S("13", "4,5,4"), "gt_cui"),
    Detector("ve.rif", "tax_id", "VE", "RIF", _W, S("10", "1,8,1", "1,9"), "ve_rif"),
    # Brazilian 11-digit numbers without a structural prefix, after CPF, CUIT and RUC
    Detector("br.cnh", "national_id", "BR", "CNH", _W, S("11"), "cnh"),
    Detector("br.pis", "national_id", "BR", "PIS", _W, S("11", "3,5,2,1"), "pis", "compact"),
    # payment data: after the identifiers with stronger checks of the same lengths
    Detector("intl.iban", "financial", None, "IBAN", _W, _iban_shapes(), "iban"),
    Detector("intl.card", "financial", None, "CARD", _W,
             S("13-19", "4,4,4,4", "4,6,5", "4,6,4", "4,4,4,4,1-3", "4,4,4,1-4"), "card"),
    Detector("cl.rut", "national_id", "CL", "RUT", _W, S("8-9", "1-2,3,3,1", "7-8,1"), "cl_rut",
             "compact"),
    Detector("co.nit", "tax_id", "CO", "NIT", _W, S("8-16", "3,3,3,1", "7-15,1"), "co_nit",
             "compact"),
    Detector("ec.ci", "national_id", "EC", "CI", _W, S("10", "9,1"), "ec_ci", "compact"),
    Detector("uy.ci", "national_id", "UY", "CI", _W, S("7-8", "1,3,3,1", "3,3,1", "6-7,1"), "uy_ci",
             "compact"),
    Detector("do.cedula", "national_id", "DO", "CEDULA", _W, S("11", "3,7,1"), "do_cedula",
             "compact"),
    Detector("us.ssn", "national_id", "US", "SSN", _W, S("9", "3,2,4"), "ssn", "compact"),
    Detector("us.itin", "tax_id", "US", "ITIN", _W, S("9", "3,2,4"), "itin", "compact"),
    Detector("us.ein", "tax_id", "US", "EIN", _W, S("9", "2,7"), "ein", "always"),
    Detector("ca.sin", "national_id", "CA", "SIN", _W, S("9", "3,3,3"), "sin", "compact"),
    Detector("py.ruc", "tax_id", "PY", "RUC", _W, S("6-9", "5-8,1"), "py_ruc", "always"),
    # identifiers without a check digit: only after a context word
    Detector("br.rg", "national_id", "BR", "RG", _W, S("7-9", "2,3,3,1", "1,3,3,1", "8,1"), "rg",
             "always"),
    Detector("mx.ine", "national_id", "MX", "INE", _W, S("18"), "ine", "always"),
    Detector("ar.dni", "national_id", "AR", "DNI", _W, S("7-8", "1-2,3,3"), "digits_id", "always"),
    Detector("co.cc", "national_id", "CO", "CC", _W, S("6-10", "1-3,3,3", "1,3,3,3"), "digits_id",
             "always"),
    Detector("pe.dni", "national_id", "PE", "DNI", _W, S("8-9", "8,1"), "pe_dni", "always"),
    Detector("py.ci", "national_id", "PY", "CI", _W, S("5-8", "1-2,3,3", "3,3"), "digits_id",
             "always"),
    Detector("bo.ci", "national_id", "BO", "CI", _W, S("5-8", "1-2,3,3"), "digits_id", "always"),
    Detector("ve.cedula", "national_id", "VE", "CEDULA", _W,
             S("7-9", "1,6-8", "1,1-2,3,3", "1-2,3,3"), "ve_cedula", "always"),
    Detector("cr.cedula", "national_id", "CR", "CEDULA", _W, S("9-10", "1,4,4", "2,4,4"),
             "cr_cedula", "always"),
    Detector("pa.cedula", "national_id", "PA", "CEDULA", _W, S("1-4,1-4,1-6"), "pa_cedula",
             "always"),
    Detector("cu.ni", "national_id", "CU", "NI", _W, S("11"), "cu_ni", "always"),
    # contact, network, markings, health
    Detector("intl.phone", "contact", None, "PHONE", _W, PHONE_SHAPES, None, "always"),
    Detector("intl.ip", "network", None, "IP", "ip"),
    Detector("gov.marking", "gov_classified", None, "CLASSIFIED", "marking"),
    Detector("health.term", "health", None, "HEALTH", "health"),
)
"""Every detector, in priority order."""

BY_ID: dict[str, Detector] = {d.id: d for d in DETECTORS}
"""Detector id → detector."""

INDEX: dict[str, int] = {d.id: i for i, d in enumerate(DETECTORS)}
"""Detector id → its priority (lower wins)."""


def _layout_table() -> dict[tuple[int, ...], tuple[int, ...]]:
    # exact chunk-length tuple -> detector indices (ascending) whose shapes accept it
    import itertools

    table: dict[tuple[int, ...], list[int]] = {}
    for i, d in enumerate(DETECTORS):
        for shape in d.shapes:
            for lengths in itertools.product(*(range(lo, hi + 1) for lo, hi in shape)):
                lst = table.setdefault(lengths, [])
                if i not in lst:
                    lst.append(i)
    return {k: tuple(sorted(v)) for k, v in table.items()}


LAYOUTS: dict[tuple[int, ...], tuple[int, ...]] = _layout_table()
"""Chunk-length tuple → indices of the window detectors that accept it, in priority order."""

MAX_CHUNKS = max(len(k) for k in LAYOUTS)
"""Most chunks a window may have."""

MAX_COMPACT = max(sum(k) for k in LAYOUTS)
"""Longest compact value of a window."""
