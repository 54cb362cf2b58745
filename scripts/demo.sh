#!/usr/bin/env bash
# make demo: a Celery worker in the background, the demo build through it, then the web
# server in the foreground. Ctrl+C stops both.
#
#   scripts/demo.sh          build the demo study, then serve
#   scripts/demo.sh serve    serve what is already built (no build step)
#
# The demo is served as in production: DEBUG off (participants and annotators never see
# Django's debug pages), static files through WhiteNoise, and a secret key generated
# once and kept in var/secret_key. Only HTTPS-only settings are relaxed, because the
# demo speaks plain HTTP on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
MODE="${1:-all}"
VAR="${GCAI_VAR_DIR:-var}"
mkdir -p "$VAR/log"

SECRET_FILE="$VAR/secret_key"
if [[ ! -s "$SECRET_FILE" ]]; then
  (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(64))' >"$SECRET_FILE")
  echo "Generated a secret key in $SECRET_FILE (kept for later runs)."
fi
export DEBUG=0
SECRET_KEY="$(cat "$SECRET_FILE")"
export SECRET_KEY
# The host served on plus the loopback names; set ALLOWED_HOSTS yourself when serving
# on 0.0.0.0 for other machines.
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-$HOST,127.0.0.1,localhost}"
export SECURE_SSL_REDIRECT=0 SECURE_COOKIES=0 SECURE_HSTS_SECONDS=0

"$BIN/python" manage.py collectstatic --noinput -v0
echo "Static files collected into $VAR/static (served by WhiteNoise)."

# The embedded model runs in-process and uses both cores for one request, so one task at a
# time is fastest there; a remote model benefits from parallel batches.
if [[ "${GCAI_LLM_BACKEND:-}" == "local" || ( -z "${OPENAI_API_KEY:-}" && -z "${GCAI_LLM_BASE_URL:-}" && -z "${GCAI_LLM_BACKEND:-}" ) ]]; then
  POOL=(--pool=solo)
else
  POOL=(--pool=threads --concurrency=4)
fi

"$BIN/celery" -A gcai worker "${POOL[@]}" --loglevel=INFO >"$VAR/log/worker.log" 2>&1 &
WORKER=$!
cleanup() { kill "$WORKER" 2>/dev/null || true; wait "$WORKER" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
echo "Celery worker started (pid $WORKER, log $VAR/log/worker.log)."

if [[ "$MODE" != "serve" ]]; then
  START=$(date +%s)
  "$BIN/python" manage.py demo_setup --base-url "http://$HOST:$PORT"
  echo "Build finished in $(( $(date +%s) - START )) s."
fi
echo "Serving on http://$HOST:$PORT with DEBUG off (Ctrl+C stops the server and the worker)."
"$BIN/python" manage.py runserver "$HOST:$PORT" --noreload
