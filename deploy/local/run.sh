#!/usr/bin/env bash
# `make run`: migrate, then run the API and the three workers in the foreground, supervised
# (services/supervisor: a process that exits is restarted with backoff; Ctrl-C stops them all).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
export STORAGE_BACKEND=${STORAGE_BACKEND:-local}
export PYTHONUNBUFFERED=1

convoforge migrate
port=${API_PORT:-8000}
cat <<MSG

Convoforge API: http://127.0.0.1:$port   (OpenAPI: http://127.0.0.1:$port/docs)
Workers' metrics: :${GENERATOR_METRICS_PORT:-9101} generator, :${EXPORTER_METRICS_PORT:-9102} exporter, :${JANITOR_METRICS_PORT:-9103} janitor
Get an API key (in another terminal):
  .venv/bin/convoforge create-user you@example.com
  .venv/bin/convoforge create-api-key you@example.com     # the key is the last line
  curl -H "Authorization: Bearer <key>" http://127.0.0.1:$port/v1/me
Web console: http://127.0.0.1:$port/console   (sign in with the key, or a one-time link:
  .venv/bin/convoforge login-link you@example.com)
MSG
if [[ -z ${ANTHROPIC_API_KEY:-} && ${LLM_PROVIDER:-offline} == offline ]]; then
  echo "*** No ANTHROPIC_API_KEY: generation uses the OFFLINE sample provider (model offline-sample). ***"
fi
echo
exec python -m services.supervisor deploy/Procfile
