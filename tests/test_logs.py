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


def test_an_exception_says_where_it_was_raised_without_its_message():
    # Only the type was logged ("worker 0 crashed", exc: KeyError): an operator could not tell which
    # code failed. The frames' places (file, line, function) hold no value; the message still is not logged.
    def inner(d):
        return d["CPF 123.456.789-09"]

    try:
        inner({})
    except KeyError:
        rec = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "crashed", (),
                                                exc_info=__import__("sys").exc_info())
    line = JsonFormatter().format(rec)
    out = orjson.loads(line)
    assert out["exc"] == "KeyError"
    assert out["at"][-1].startswith(f"{__file__}:") and out["at"][-1].endswith(" in inner")
    assert "123.456.789-09" not in line
