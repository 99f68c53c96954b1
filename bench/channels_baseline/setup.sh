#!/usr/bin/env bash
# Creates bench/.channels-venv with Django Channels for the baseline server, and nothing else.
# Idempotent: a venv that already imports every requirement is left as it is.
# Django Channels is never a dependency of gochat-py: it lives only in this separate venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${CHANNELS_VENV:-$HERE/../.channels-venv}"
PYTHON="${PYTHON:-python3}"
# Lower bounds, not exact pins: Django 6 needs Python 3.12, so 3.11 resolves to Django 5.2.
REQUIREMENTS=(
    "django>=5.2"
    "channels>=4.3"
    "channels_redis>=4.3"
    "uvicorn[standard]>=0.35"
)

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - <<'PY' 2>/dev/null; then
import django, channels, channels_redis, uvicorn, uvloop, httptools, websockets  # noqa: F401
PY
    exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${REQUIREMENTS[@]}"
