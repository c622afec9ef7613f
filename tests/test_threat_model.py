"""docs/threat-model.md cannot rot: every test it cites exists, and every path and symbol it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "threat-model.md"
TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[(\w+)\])?`")
PATH = re.compile(r"`((?:gateway|plugins|policies|deploy)/[\w./-]*)`(?: \(([^)]*)\))?")


def _tests(path: Path) -> set[str]:
    """The test functions of a module, at its top level (where pytest collects them)."""
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_cited_test_exists():
    text = DOC.read_text()
    cited = TEST.findall(text)
    assert len(cited) > 50, "the doc cites its tests as tests/<file>::<name>"
    for file, name, param in cited:
        path = ROOT / file
        assert path.is_file(), file
        assert name in _tests(path), f"{file}::{name}"
        if param:  # a parametrized case: the parameter is named in the module
            assert re.search(rf"\b{param}\b", path.read_text()), f"{file}::{name}[{param}]"


def test_every_cited_path_and_symbol_exists():
    text = DOC.read_text()
    cited = PATH.findall(text)
    assert len(cited) > 30
    for path, symbols in cited:
        target = ROOT / path
        assert target.exists(), path
        for symbol in re.findall(r"`([\w.]+)`", symbols):
            assert target.is_file() and re.search(rf"\b{re.escape(symbol.split('.')[-1])}\b", target.read_text()), \
                f"{path}: {symbol}"


def test_a_wrong_citation_is_caught(tmp_path):
    """The checks above fail on a name that is not there (so they are not vacuous)."""
    assert "test_no_such_thing" not in _tests(ROOT / "tests/server/test_threats_e2e.py")
    assert TEST.findall("`tests/server/test_http.py::test_http[malformed_is_400]`") == [
        ("tests/server/test_http.py", "test_http", "malformed_is_400")]
    assert PATH.findall("`gateway/server/proxy.py` (`_relay_json`)") == [("gateway/server/proxy.py", "`_relay_json`")]
