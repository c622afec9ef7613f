"""Structured JSON logs (one object a line on stderr). Messages carry ids and codes, never values."""

from __future__ import annotations

import logging
import sys
import time
import traceback

import orjson


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: int | None = 0):
        super().__init__()
        self.worker = worker
        """The worker's number; None (null) in the parent of pre-forked workers."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "worker": self.worker,
               "msg": record.getMessage()}
        if record.exc_info and record.exc_info[0] is not None:
            # the exception's type only: its message, or the source lines and locals of a traceback,
            # could quote a request value; the places it passed through (file, line, function) cannot,
            # and without them nobody could tell which code failed
            out["exc"] = record.exc_info[0].__name__
            out["at"] = [f"{f.filename}:{f.lineno} in {f.name}"
                         for f in traceback.extract_tb(record.exc_info[2], limit=-20)]
        return orjson.dumps(out).decode()


def setup_logging(worker: int | None = 0, level: str = "INFO") -> None:
    """Send every log record to stderr as a JSON line (``worker`` None: the pre-forking parent's)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
