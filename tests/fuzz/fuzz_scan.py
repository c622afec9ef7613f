"""Coverage-guided differential fuzzing of inspection: the compiled core against the reference.

    .venv/bin/python tests/fuzz/fuzz_scan.py [CORPUS_DIR] [libFuzzer flags, e.g. -runs=500000 -max_len=512]

atheris instruments the reference's modules (``gateway.inspect``: the scan, normalization, detectors,
validators, keywords), so libFuzzer keeps and mutates the inputs that reach new branches of it. Each
input, decoded as UTF-8 (bad bytes become U+FFFD), is scanned by both implementations; a difference
raises, and libFuzzer saves the input as ``crash-<sha1>`` beside the corpus. Run with no corpus
folder, it starts from the seeds below (every valid identifier of ``tests/inspect/generators.py`` in
a sentence, and the evasion forms); ``tests/fuzz/test_fuzz.py`` runs a bounded number of inputs on
every test run.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["gateway.inspect"]):
    from gateway.inspect import _scan_py

from gateway.inspect import _scan_c  # (compiled: not instrumented, the reference's coverage steers)


def one(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    ref, core = _scan_py.scan(text), _scan_c.scan(text)
    if ref != core:
        raise AssertionError(f"the implementations disagree on {text!r}:\n  reference {ref}\n  compiled  {core}")


def seeds() -> list[bytes]:
    """Sentences with a valid value of every detector, plain and under every evasion form."""
    import random
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
    from generators import EVASIONS, VALID, evade, sample

    rng = random.Random(7)
    out = []
    for detector in VALID:
        sentence, value = sample(detector, rng)
        out.append(sentence.encode())
        form = EVASIONS[len(out) % len(EVASIONS)]
        out.append(sentence.replace(value, evade(value, form, rng)).encode())
    out += [b"password=hunter2 sk-proj-abcdEFGH1234ijklMNOP5678qrstUVWX ana.souza@example.gov.br",
            b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", b"CONFIDENCIAL CID J45.0",
            "c\u00e9dula 1.234.567-8 RESERVADO \u00fcber 192.168.0.1 +55 11 91234-5678".encode()]
    return out


def main() -> None:
    argv = sys.argv
    if not any(not a.startswith("-") for a in argv[1:]):  # no corpus folder: a fresh one with the seeds
        import tempfile
        from pathlib import Path

        corpus = Path(tempfile.mkdtemp(prefix="soberana-fuzz-"))
        for i, s in enumerate(seeds()):
            (corpus / f"seed-{i:03d}").write_bytes(s)
        argv = [argv[0], str(corpus), *argv[1:]]
    atheris.Setup(argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
