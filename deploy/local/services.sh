#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback: start them when stopped, install them from
# Debian packages when missing. Idempotent and silent when everything is already up.
#   deploy/local/services.sh               PostgreSQL + Redis
#   deploy/local/services.sh --test-tools  also the tools the test suite calls
#                                          (docker-compose for `config -q`, promtool,
#                                          jq for the README walkthrough test,
#                                          chromium for the console's browser tests)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
apt_updated=0

say() { echo "services: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "installing $* from Debian packages"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_up() { pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; }
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

wait_for() {  # name check-function
  for _ in $(seq 1 60); do
    "$2" && return 0
    sleep 0.5
  done
  say "$1 did not come up"
  return 1
}

# A fresh Debian cluster asks for passwords on loopback; the local runner uses trust auth there,
# exactly like the development machines (never do this on a shared host).
trust_loopback() {
  local hba=$1
  grep -q "convoforge: trust loopback" "$hba" && return
  as_root sed -i '1i # convoforge: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
}

ensure_postgres() {
  command -v pg_isready >/dev/null 2>&1 && pg_up && return
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql postgresql-contrib
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  [[ -n $version ]] || { as_root pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main; version=$(ls /etc/postgresql | sort -V | tail -n 1); }
  trust_loopback "/etc/postgresql/$version/main/pg_hba.conf"
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_up
}

ensure_redis() {
  command -v redis-cli >/dev/null 2>&1 && redis_up && return
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly yes --appendfsync everysec --dir /var/lib/redis --logfile /var/log/redis/convoforge.log
  wait_for Redis redis_up
}

ensure_test_tools() {
  local missing=()
  command -v docker-compose >/dev/null 2>&1 || { missing+=(docker-compose); say "tests need docker-compose (checks docker-compose.yml with config -q)"; }
  command -v promtool >/dev/null 2>&1 || { missing+=(prometheus); say "tests need promtool from prometheus (checks alert rules)"; }
  command -v jq >/dev/null 2>&1 || { missing+=(jq); say "tests need jq (the README walkthrough captures ids with it)"; }
  [[ -x /usr/bin/chromium ]] || { missing+=(chromium); say "tests need chromium (the console's browser tests, tests/console/)"; }
  [[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
}

# Only the loopback servers this script manages: DATABASE_URL / REDIS_URL elsewhere are theirs.
points_here() { [[ -z ${1:-} || $1 == *"@127.0.0.1:$2/"* || $1 == *"@localhost:$2/"* || $1 == *"//127.0.0.1:$2"* || $1 == *"//localhost:$2"* ]]; }
if points_here "${DATABASE_URL:-}" "$PG_PORT"; then ensure_postgres; else say "DATABASE_URL is not local PostgreSQL on :$PG_PORT; not checking it"; fi
if points_here "${REDIS_URL:-}" "$REDIS_PORT"; then ensure_redis; else say "REDIS_URL is not local Redis on :$REDIS_PORT; not checking it"; fi
[[ ${1:-} == --test-tools ]] && ensure_test_tools
exit 0
