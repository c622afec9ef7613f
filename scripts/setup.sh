#!/usr/bin/env bash
# Set up a development environment in .venv: the package (with its Cython core) and the test tools.
# The runtime dependencies are held to deploy/requirements.lock's pins (what the container image
# installs), so the tests run on the versions that ship; the test tools are not pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# the build tools the image builds with (Cython, setuptools, wheel), hashes checked: the Cython core
# under test is compiled by the same Cython, and a wheel builds offline (--no-build-isolation)
.venv/bin/python -m pip install -q --require-hashes -r deploy/build-requirements.lock
# the lock's "name==version" lines without their hashes: pip takes a hashed constraints file as a
# demand that every install be hashed, which an editable install cannot be
sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*==[^ \\]*\).*/\1/p' deploy/requirements.lock > .venv/constraints.txt
.venv/bin/python -m pip install -q --no-build-isolation -c .venv/constraints.txt -e ".[test]"
