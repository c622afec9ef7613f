"""A bounded run of the coverage-guided fuzz targets on every test run (a real process: libFuzzer ends
it). Longer runs: ``.venv/bin/python tests/fuzz/fuzz_scan.py -runs=500000``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
pytest.importorskip("gateway.inspect._scan_c")  # the compiled core is what the reference is compared with

HERE = Path(__file__).resolve().parent


def test_the_compiled_core_agrees_with_the_reference_on_fuzzed_inputs(tmp_path):
    r = subprocess.run([sys.executable, str(HERE / "fuzz_scan.py"), "-runs=20000", "-max_len=512", "-seed=1",
                        f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "Done 20000 runs" in r.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_a_disagreement_is_caught(tmp_path):
    # the harness must be able to fail: a reference that drops its last finding disagrees on the seeds
    shim = tmp_path / "broken.py"
    shim.write_text(f"""
import runpy, sys
from gateway.inspect import _scan_py
real = _scan_py.scan
_scan_py.scan = lambda text: real(text)[:-1]
sys.argv = [{str(HERE / 'fuzz_scan.py')!r}, "-runs=200", "-artifact_prefix={tmp_path}/"]
runpy.run_path(sys.argv[0], run_name="__main__")
""")
    r = subprocess.run([sys.executable, str(shim)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode != 0
    assert "the implementations disagree" in r.stdout + r.stderr
    assert list(tmp_path.glob("crash-*"))
