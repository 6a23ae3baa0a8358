#!/usr/bin/env bash
# Regenerate every golden fixture in test/fixtures/ from PyTorch (Debian's python3-torch).
# Usage: scripts/golden/run.sh   (from anywhere; runs from the repo root)
set -euo pipefail

cd "$(dirname "$0")/../.."

PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ ! -x "$PY" ] || ! "$PY" -c "import torch, numpy, sentencepiece, jinja2" >/dev/null 2>&1; then
  echo "error: $PY cannot import torch / numpy / sentencepiece / jinja2." >&2
  echo "Install Debian's packages first:  apt-get install -y python3-torch libopenblas0-openmp python3-sentencepiece python3-jinja2" >&2
  exit 1
fi

status=0
for script in scripts/golden/*.py; do
  case "$(basename "$script")" in
    safetensors_io.py) continue ;;  # helper module, not a generator
  esac
  echo "== $script"
  if ! "$PY" "$script"; then
    echo "error: $script failed" >&2
    status=1
  fi
done
exit $status
