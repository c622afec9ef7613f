#!/usr/bin/env bash
# Set up and run the whole test suite (both inspection implementations run in it).
set -euo pipefail
cd "$(dirname "$0")/.."
# The Redis rate-limit plugin is tested against a real redis-server.
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null 2>&1 \
    || echo "warning: could not install redis-server" >&2
fi
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
