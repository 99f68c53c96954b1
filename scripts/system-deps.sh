#!/usr/bin/env bash
# Make sure the local stack's server binaries exist: redis-server and PostgreSQL's
# initdb/postgres, and Chromium for the browser tests (tests/browser). Installs them with
# apt-get where it can; otherwise says what to install. Skips whatever the environment
# points elsewhere (REDIS_URL/REDIS_ADDR, DATABASE_URL, CHROMIUM).
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

have_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] || command -v "$CHROMIUM" >/dev/null 2>&1
    return
  fi
  command -v chromium >/dev/null 2>&1
}

missing=()
if [ -z "${REDIS_URL:-}${REDIS_ADDR:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if [ -z "${DATABASE_URL:-}" ] && ! have_postgres; then
  missing+=(postgresql)
fi
if ! have_chromium; then
  if [ -n "${CHROMIUM:-}" ]; then
    echo "CHROMIUM=$CHROMIUM is not an executable browser" >&2
    exit 1
  fi
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Wait for a dpkg lock held by another installer (unattended upgrades) instead of failing.
  apt=(apt-get -o DPkg::Lock::Timeout=300)
  $sudo "${apt[@]}" update -qq >/dev/null
  # Only the binaries: the packaged services must not start and take the default ports.
  $sudo "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
  fi
  $sudo service redis-server stop >/dev/null 2>&1 || true
  $sudo service postgresql stop >/dev/null 2>&1 || true
  exit 0
fi
echo "missing: ${missing[*]}. Install them (Debian/Ubuntu: apt-get install ${missing[*]};" \
     "macOS: brew install redis postgresql, and a Chromium) or set REDIS_URL / DATABASE_URL" \
     "to servers you run and CHROMIUM to a Chromium or Chrome binary." >&2
exit 1
