#!/usr/bin/env bash
# make demo: a Celery worker in the background, the demo build through it, then the web
# server in the foreground. Ctrl+C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
mkdir -p var/log

# The embedded model runs in-process and uses both cores for one request, so one task at a
# time is fastest there; a remote model benefits from parallel batches.
if [[ "${GCAI_LLM_BACKEND:-}" == "local" || ( -z "${OPENAI_API_KEY:-}" && -z "${GCAI_LLM_BASE_URL:-}" && -z "${GCAI_LLM_BACKEND:-}" ) ]]; then
  POOL=(--pool=solo)
else
  POOL=(--pool=threads --concurrency=4)
fi

"$BIN/celery" -A gcai worker "${POOL[@]}" --loglevel=INFO >var/log/worker.log 2>&1 &
WORKER=$!
cleanup() { kill "$WORKER" 2>/dev/null || true; wait "$WORKER" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
echo "Celery worker started (pid $WORKER, log var/log/worker.log)."

START=$(date +%s)
"$BIN/python" manage.py demo_setup --base-url "http://$HOST:$PORT"
echo "Build finished in $(( $(date +%s) - START )) s."
echo "Serving on http://$HOST:$PORT (Ctrl+C stops the server and the worker)."
"$BIN/python" manage.py runserver "$HOST:$PORT" --noreload
