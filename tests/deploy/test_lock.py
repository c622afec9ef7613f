"""The dependency locks (deploy/requirements.lock, deploy/build-requirements.lock, written by
scripts/lock.sh): complete, hashed, within pyproject.toml's ranges and security floors, and the very
versions this test suite runs on."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# the security floors the project holds itself to (pyproject.toml states them too), with the last
# release below each
FLOORS = {"aiohttp": (Version("3.14.3"), "3.14.2"), "pyjwt": (Version("2.13.0"), "2.12.1")}


def parse_lock(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """``{canonical name: (pinned version, [sha256 hashes])}`` of a pip-compile lock."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", line)
        if m:
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{path.name}: {current} pinned twice"
            pins[current] = (Version(m.group(2)), [])
        elif (h := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})\b", line)) and current:
            pins[current][1].append(h.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            assert line.startswith(" "), f"{path.name}: a line the lock should not hold: {line!r}"
    return pins


RUNTIME = parse_lock(ROOT / "deploy" / "requirements.lock")
BUILD = parse_lock(ROOT / "deploy" / "build-requirements.lock")


def _applies(req: Requirement, extra: str = "") -> bool:
    return req.marker is None or req.marker.evaluate({**default_environment(), "extra": extra})


def test_every_pin_carries_the_hashes_of_its_files():
    for name, (_, hashes) in {**RUNTIME, **BUILD}.items():
        assert hashes, f"{name} is pinned without a hash: pip --require-hashes would refuse the lock"


@pytest.mark.parametrize("extra", ["", "redis"])
def test_the_runtime_lock_pins_every_dependency_within_pyprojects_range(extra):
    reqs = PYPROJECT["project"]["dependencies"] if not extra else PYPROJECT["project"]["optional-dependencies"][extra]
    for text in reqs:
        req = Requirement(text)
        if not _applies(req, extra):
            continue
        name = canonicalize_name(req.name)
        assert name in RUNTIME, f"{req.name} is a dependency but deploy/requirements.lock does not pin it: run scripts/lock.sh"
        assert req.specifier.contains(RUNTIME[name][0], prereleases=True), \
            f"the lock pins {name} {RUNTIME[name][0]}, outside pyproject.toml's {req.specifier}: run scripts/lock.sh"


def test_the_build_lock_pins_the_build_systems_requirements():
    for text in PYPROJECT["build-system"]["requires"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in BUILD and req.specifier.contains(BUILD[name][0], prereleases=True), text


def test_the_locks_hold_the_security_floors():
    for name, (floor, below) in FLOORS.items():
        assert RUNTIME[name][0] >= floor, f"{name} {RUNTIME[name][0]} is below the security floor {floor}"
        spec = next(Requirement(t).specifier for t in PYPROJECT["project"]["dependencies"]
                    if canonicalize_name(Requirement(t).name) == name)
        assert not spec.contains(below), f"pyproject.toml lets {name} below {floor}"


def test_the_runtime_lock_is_closed_and_is_what_the_tests_run_on():
    """Each locked package is the installed one (scripts/setup.sh installs within the lock), and each
    of its own requirements is locked too: `pip install --require-hashes --no-deps` of the lock, as
    the Dockerfile does, leaves nothing missing."""
    for name, (version, _) in RUNTIME.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is locked but not installed: run scripts/setup.sh")
        assert Version(dist.version) == version, \
            f"{name} {dist.version} is installed, the lock pins {version}: the tests would not run on what ships (scripts/setup.sh)"
        for text in dist.requires or []:
            req = Requirement(text)
            if _applies(req):
                assert canonicalize_name(req.name) in RUNTIME, f"{name} needs {req.name}, which the lock lacks"


def test_the_dockerfile_installs_from_the_locks_with_hashes_required():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes -r deploy/build-requirements.lock" in text
    assert "--no-build-isolation --no-deps" in text  # the wheel is built with the locked build tools
    install = re.search(r"pip install [^\n]*--require-hashes --no-deps \\\n\s+-r /wheels/requirements.lock", text)
    assert install, "the image must install its dependencies from the lock, hashes required"
    assert "pip check" in text
