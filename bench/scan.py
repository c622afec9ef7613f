"""Inspection throughput: the compiled core and the pure-Python reference beside `re` baselines.

    .venv/bin/python bench/scan.py [--mb 4] [--repeat 9] [--seed 7] [--core-only]

Builds a deterministic mixed Spanish/Portuguese/English corpus with personal data (Faker, seeded):
prose paragraphs interleaved with sentences that carry CPFs, CNPJs, CURPs, RFCs, RUTs, CUITs, SSNs,
e-mails, phones, cards, IBANs, dates and amounts. Every implementation scans the same text in the same
process; the table gives MB/s (UTF-8 megabytes, 10**6 bytes, best of --repeat) and each row's ratio to
the `re` digit-runs pass, the baseline the compiled core must beat by 3x (aim 10x), twice: as the
ratio of the bests, and as the median over rounds of the ratio within a round. The rows are timed
round-robin (one run of each per round, every other round in reverse order; the compiled core
next to the baseline), so a busy
spell slows both runs of a round alike: the median of those paired ratios moves far less between
runs on this noisy host than the ratio of two bests, which may come from different quiet moments.

``--core-only`` scans the corpus once with the compiled core and nothing else (after a warm-up
scan of its first 2,000 characters), for instruction counts that do not depend on the machine's
load: callgrind's count divided by the characters printed is the instructions per character.

    valgrind --tool=callgrind --toggle-collect='__pyx_pw_*_scan_c_*scan' \
        .venv/bin/python bench/scan.py --mb 1 --core-only
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOCALES = ["pt_BR", "es_MX", "es_AR", "es_CO", "es_CL", "es_ES", "en_US"]

# One big alternation of ~12 PII patterns: what a naive regex inspector does.
BIG_ALTERNATION = re.compile("|".join([
    r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b",                           # CPF
    r"\b\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}\b",                    # CNPJ
    r"\b[A-Z]{4}\d{6}[HM][A-Z]{5}[0-9A-Z]\d\b",                    # CURP
    r"\b[A-ZÑ&]{3,4}\d{6}[A-Z\d]{3}\b",                            # RFC
    r"\b\d{1,2}\.?\d{3}\.?\d{3}-?[\dkK]\b",                        # RUT
    r"\b(?:20|23|24|27|30|33|34)-?\d{8}-?\d\b",                    # CUIT
    r"\b\d{3}-\d{2}-\d{4}\b",                                      # SSN
    r"[\w.+-]+@[\w-]+\.[\w.-]+",                                   # e-mail
    r"\+?\d{1,3}[ .-]?\(?\d{2,3}\)?[ .-]?\d{4,5}[ .-]?\d{4}",      # phone
    r"\b(?:\d[ -]?){13,19}\b",                                     # card
    r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b",                           # IBAN
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}\b",                        # API key
]))
DIGIT_RUNS = re.compile(r"[0-9]+")


def corpus(mb: float, seed: int) -> str:
    """About ``mb`` UTF-8 megabytes of prose with personal data, the same for the same seed."""
    from faker import Faker

    Faker.seed(seed)
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for f in fakers.values():
        f.seed_instance(seed)
    br, mx, ar, cl, us = (fakers[k] for k in ("pt_BR", "es_MX", "es_AR", "es_CL", "en_US"))
    templates = [
        lambda: f"O contribuinte {br.name()}, CPF {br.cpf()}, reside em {br.address()}.",
        lambda: f"A empresa {br.company()} (CNPJ {br.cnpj()}) pagou R$ {rng.randrange(100, 99999)},{rng.randrange(100):02d} em {br.date()}.",
        lambda: f"Cartão SUS do paciente: {rng.randrange(10**14, 10**15)}; telefone {br.phone_number()}.",
        lambda: f"El solicitante {mx.name()} con CURP {mx.curp()} y RFC {mx.rfc()} vive en {mx.city()}.",
        lambda: f"CUIT del proveedor: {rng.choice(['20', '27', '30'])}-{rng.randrange(10**7, 10**8)}-{rng.randrange(10)}; tel. {ar.phone_number()}",
        lambda: f"RUT {cl.rut()} - correo {cl.email()}",
        lambda: f"Patient {us.name()}, SSN {us.ssn()}, email {us.email()}, card {us.credit_card_number()}.",
        lambda: f"Wire to IBAN {us.iban()} before {us.date()}; invoice #{rng.randrange(10**5, 10**7)}.",
        lambda: f"Contato: {br.email()} / {br.phone_number()}",
    ]
    parts: list[str] = []
    size = 0
    target = int(mb * 1_000_000)
    locs = list(fakers.values())
    while size < target:
        f = rng.choice(locs)
        chunk = f.paragraph(nb_sentences=rng.randrange(2, 7))
        if rng.random() < 0.6:
            chunk += " " + rng.choice(templates)()
        parts.append(chunk)
        size += len(chunk.encode()) + 1
    return "\n".join(parts)


def measure(jobs: list[tuple[object, str]], repeat: int) -> list[list[float]]:
    """Wall times of each ``fn(text)`` of ``jobs``: ``repeat`` rounds, each running every job once."""
    times: list[list[float]] = [[] for _ in jobs]
    for r in range(repeat):
        # every other round in reverse order: no row always runs right after the same one
        for k in range(len(jobs)) if r % 2 == 0 else reversed(range(len(jobs))):
            fn, text = jobs[k]
            t0 = time.perf_counter()
            fn(text)
            times[k].append(time.perf_counter() - t0)
    return times


def paired_ratio(times: list[float], base: list[float], nbytes: int, base_bytes: int) -> float:
    """Median over rounds of (MB/s of a row / MB/s of the baseline in the same round): a busy
    spell slows both runs of a round alike, so this moves less between runs than a ratio of bests."""
    r = sorted((nbytes / t) / (base_bytes / b) for t, b in zip(times, base))
    return r[len(r) // 2] if len(r) % 2 else (r[len(r) // 2 - 1] + r[len(r) // 2]) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=4.0, help="corpus size in UTF-8 megabytes")
    ap.add_argument("--repeat", type=int, default=9,
                    help="rounds: runs of each implementation (the best, and the median of paired ratios)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--slow-mb", type=float, default=0.5,
                    help="the slow rows (reference, big alternation) run on this prefix only")
    ap.add_argument("--core-only", action="store_true",
                    help="one scan with the compiled core, nothing else (for callgrind)")
    args = ap.parse_args(argv)

    text = corpus(args.mb, args.seed)
    if args.core_only:
        from gateway.inspect import _scan_c as core

        core.scan(text[:2000])   # tables and scratch buffers warm
        t0 = time.perf_counter()
        found = core.scan(text)
        seconds = time.perf_counter() - t0
        print(f"compiled core: {len(text):,} characters, {len(found)} findings, "
              f"{len(text.encode()) / 1e6 / seconds:.1f} MB/s")
        return 0
    nbytes = len(text.encode())
    small = text[: int(len(text) * min(1.0, args.slow_mb / args.mb))]
    small_bytes = len(small.encode())

    from gateway.inspect import _scan_py
    try:
        from gateway.inspect import _scan_c
    except ImportError:
        _scan_c = None

    jobs: list[tuple[str, object, str, int]] = []

    def row(name, fn, t, b):
        jobs.append((name, fn, t, b))

    row("re: digit runs  [0-9]+", lambda t: sum(1 for _ in DIGIT_RUNS.finditer(t)), text, nbytes)
    if _scan_c is not None:   # right after its baseline: the two runs of a round are adjacent
        row("soberana _scan_c (compiled core)", _scan_c.scan, text, nbytes)
    row("re: one alternation of 12 PII patterns",
        lambda t: sum(1 for _ in BIG_ALTERNATION.finditer(t)), small, small_bytes)
    row("str.count('@')  (memory-speed floor)", lambda t: t.count("@"), text, nbytes)
    try:
        import hyperscan  # type: ignore[import-not-found]

        db = hyperscan.Database()
        pats = [rb"\d{3}\.?\d{3}\.?\d{3}-?\d{2}", rb"[\w.+-]+@[\w-]+\.[\w.-]+", rb"(\d[ -]?){13,19}"]
        db.compile(expressions=pats, ids=list(range(len(pats))), elements=len(pats),
                   flags=[hyperscan.HS_FLAG_SOM_LEFTMOST] * len(pats))
        raw = text.encode()
        row("hyperscan, 3 patterns, whole buffer", lambda t: db.scan(raw, match_event_handler=lambda *a: None),
            text, nbytes)
    except ImportError:
        pass
    row("soberana _scan_py (reference)", _scan_py.scan, small, small_bytes)

    times = measure([(fn, t) for _, fn, t, _ in jobs], args.repeat)
    rows = [(name, b / 1e6 / min(ts), f"{b / 1e6:.1f} MB", paired_ratio(ts, times[0], b, nbytes))
            for (name, _, _, b), ts in zip(jobs, times)]
    base = rows[0][1]
    print(f"corpus: {nbytes / 1e6:.2f} MB UTF-8, {len(text):,} characters, seed {args.seed}, "
          f"best of {args.repeat} rounds")
    n_ref = len(_scan_py.scan(small))
    print(f"findings on the {small_bytes / 1e6:.2f} MB prefix: reference {n_ref}"
          + (f", compiled {len(_scan_c.scan(small))}" if _scan_c else ""))
    print(f"{'implementation':44} {'MB/s':>9} {'x digit-runs':>13} {'(median of rounds)':>19}  input")
    for name, mbs, size, paired in rows:
        print(f"{name:44} {mbs:9.1f} {mbs / base:13.2f} {paired:19.2f}  {size}")
    if _scan_c is not None:
        same = _scan_c.scan(small) == _scan_py.scan(small)
        print(f"compiled core == reference on the prefix: {same}")
        ref = next(r[1] for r in rows if "reference" in r[0])
        core, paired = next((r[1], r[3]) for r in rows if "compiled" in r[0])
        print(f"compiled core / digit-runs re: {core / base:.2f}x (bests), {paired:.2f}x (median of "
              f"the rounds' ratios)   compiled core / reference: {core / ref:.0f}x")
        if max(text) < "\u0100":
            best: dict[str, float] = {}
            for _ in range(args.repeat):
                for k, v in _scan_c._stage_times(text).items():
                    best[k] = min(best.get(k, 1e9), v)
            print("compiled core by stage (ns per character, best of runs):  "
                  + ", ".join(f"{k} {v * 1e9 / len(text):.1f}" for k, v in best.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
