"""Log lines are JSON and never carry an exception's message (it could quote a request value)."""

import logging

import orjson

from gateway.logs import JsonFormatter


def test_exception_logged_by_type_only():
    try:
        raise ValueError("CPF 123.456.789-09 is odd")
    except ValueError:
        rec = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "inspection failed for %s", ("r1",),
                                                exc_info=__import__("sys").exc_info())
    line = JsonFormatter(worker=3).format(rec)
    out = orjson.loads(line)
    assert out["exc"] == "ValueError" and out["msg"] == "inspection failed for r1" and out["worker"] == 3
    assert "123.456.789-09" not in line
