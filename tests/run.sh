#!/usr/bin/env bash
# The project's one test command: `bash tests/run.sh [pytest args]`.
# Idempotent. Lints (ruff) and type-checks (mypy) the code, makes sure the optional test
# tools are there, then runs pytest:
#   - /usr/bin/chromium for the browser tests (installed with apt when running as root)
#   - tests/interop/node_modules (pinned BullMQ + ioredis) for the interop tests (npm ci)
#   - tests/a11y/node_modules (pinned axe-core) for the accessibility tests (npm ci)
# Whatever cannot be provided is reported here, and the tests that need it skip themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x /usr/bin/chromium ]; then
  :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tests/run.sh: installing Debian's chromium for the browser tests (about a minute)"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
else
  echo "tests/run.sh: /usr/bin/chromium is missing and we are not root: browser tests will be skipped" \
       "(as root: apt-get install chromium)"
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  # npm ci rewrites node_modules/.package-lock.json, so "lock file newer" means "install again".
  for dir in tests/interop tests/a11y; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund)
    fi
  done
else
  echo "tests/run.sh: node/npm not found: BullMQ interop and accessibility tests will be skipped"
fi

echo "tests/run.sh: ruff check (lint)"
python -m ruff check .
echo "tests/run.sh: mypy (types: dashboard/, app.py, tests/)"
python -m mypy

exec python -m pytest "$@"
