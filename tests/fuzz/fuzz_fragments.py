"""Long differential runs of the compiled core against the reference on assembled texts.

    .venv/bin/python tests/fuzz/fuzz_fragments.py [SECONDS] [SEED]

Builds texts with ``fragments.text`` (identifiers, context words, evasion forms; see there) and
compares ``scan``, ``scan_decoded`` and ``normalize`` of both implementations, until SECONDS have
passed (default 60). Each disagreement is minimized and printed as a ``repr`` ready to become a
regression case; the exit status is 1 when there was one.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fragments  # noqa: E402

from gateway.inspect import _scan_c, _scan_py, normalize as _norm_py  # noqa: E402

CHECKS = {
    "scan": (_scan_py.scan, _scan_c.scan),
    "scan_decoded": (_scan_py.scan_decoded, _scan_c.scan_decoded),
}


def _normalize_differs(t: str) -> bool:
    return tuple(_norm_py.normalize(t)) != tuple(_scan_c.normalize(t))


def _fails(ref, core):
    def f(t: str) -> bool:
        try:
            fragments.check(ref, core, t)
        except AssertionError:
            return True
        except Exception:  # noqa: BLE001 - a crash of either is a failure too
            return True
        return False
    return f


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    rng = random.Random(seed)
    stop = time.monotonic() + seconds
    n = bad = 0
    seen = set()
    while time.monotonic() < stop:
        t = fragments.text(rng)
        n += 1
        for name, (ref, core) in CHECKS.items():
            fails = _fails(ref, core)
            if fails(t):
                small = fragments.minimize(fails, t)
                if small not in seen:
                    seen.add(small)
                    bad += 1
                    print(f"{name} DIFFERS: {small!r}", flush=True)
                    try:
                        print("   ref ", ref(small), "\n   core", core(small), flush=True)
                    except Exception as e:  # noqa: BLE001
                        print("   raised", repr(e), flush=True)
        if _normalize_differs(t):
            small = fragments.minimize(_normalize_differs, t)
            if small not in seen:
                seen.add(small)
                bad += 1
                print(f"normalize DIFFERS: {small!r}", flush=True)
    print(f"seed {seed}: {n} texts, {bad} distinct disagreements", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
