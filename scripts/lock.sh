#!/usr/bin/env bash
# Pin what the container image and the test environment install, with every file's SHA-256:
#   deploy/requirements.lock        the runtime dependencies (with the redis extra), for `soberana`
#   deploy/build-requirements.lock  what builds the wheel (setuptools, wheel, Cython)
# Run after changing a dependency in pyproject.toml, or to take security releases; commit both files.
# scripts/setup.sh installs the development environment within these pins, so the test suite runs on
# the versions the image ships. Needs PyPI (pip-tools runs from a throwaway virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "pip-tools>=7.4"
compile=("$tmp/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras
         --no-emit-index-url --no-emit-find-links)
CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "${compile[@]}" --extra redis \
  --output-file deploy/requirements.lock pyproject.toml
# the build system's requirements, from pyproject.toml (pyproject.toml [build-system] requires)
"$tmp/venv/bin/python" - "$tmp/build-system-requires" <<'PY'
import sys, tomllib
with open("pyproject.toml", "rb") as f:
    requires = tomllib.load(f)["build-system"]["requires"]
open(sys.argv[1], "w").write("\n".join(requires) + "\n")
PY
(cd "$tmp" && CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "${compile[@]}" \
   --output-file "$OLDPWD/deploy/build-requirements.lock" build-system-requires)
