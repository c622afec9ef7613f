"""The window of a streamed answer kept for the leak scan: bounded, and cheap per delta."""

from __future__ import annotations

import time

from gateway.server.proxy import LEAK_WINDOW, _LeakTap, _LeakWindow


def test_many_small_deltas_cost_linear_time():
    # every delta used to sum the lengths of all pieces kept so far: 20 000 deltas of two characters
    # took 10 s of the event loop; 30 000 now take milliseconds
    window = _LeakWindow()
    tap = _LeakTap(None, window)
    t0 = time.perf_counter()
    for _ in range(30000):
        assert tap.feed("ab") == "ab"
    assert time.perf_counter() - t0 < 3.0
    assert window.text() == "ab" * 30000


def test_the_window_is_bounded_and_keeps_the_start_and_the_held_back_ends():
    window = _LeakWindow()
    tap = _LeakTap(None, window)
    piece = "x" * 1000
    for _ in range(LEAK_WINDOW // 1000 + 50):
        tap.feed(piece)
    assert LEAK_WINDOW <= window.size < LEAK_WINDOW + 1000
    window.add("\nerro\n", always=True)  # an error event is scanned whatever the fill
    assert window.text().endswith("x\nerro\n") and window.size == len(window.text())
