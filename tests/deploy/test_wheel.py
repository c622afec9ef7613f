"""The built distribution, installed outside the checkout, runs: `pip install soberana` and the image
get the policies the demo and `soberana stub` need, not only the code."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_installed_in_a_fresh_environment_runs_the_demo(tmp_path):
    # the pure-Python build (SOBERANA_NO_EXTENSIONS=1): the Cython build takes minutes, and which
    # modules are compiled does not change which files ship
    env = {**os.environ, "SOBERANA_NO_EXTENSIONS": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(ROOT)], check=True, env=env, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("soberana-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "soberana-0.1.0.data/data/share/soberana/"
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "policies").rglob("*") if p.is_file()}
    assert {data + name for name in shipped} <= names, sorted(shipped - {n[len(data):] for n in names})

    # a fresh virtualenv with the wheel; its dependencies come from this test environment's
    # site-packages (a plain path entry: the checkout's editable install is not imported)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([venv / "bin" / "python", "-c", "import gateway; print(gateway.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not the checkout

    demo = subprocess.run([venv / "bin" / "soberana", "demo"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "SOBERANA_NO_EXTENSIONS": "1"}, timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "policy folder not found" not in demo.stderr
