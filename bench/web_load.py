"""Web load: simulated annotators against gunicorn + PostgreSQL on this machine.

Creates its own database (dropped afterwards unless --keep-db), annotator accounts with
API tokens, one study and a dataset with overlap K, starts gunicorn on 127.0.0.1, then
runs N concurrent annotators for D seconds. Each annotator loops: POST next -> POST
submit (no think time, so this measures the server, not people). Reports requests per
second, p50/p95/p99 latency of next and submit, and the count check: annotations in the
database == successful submits, with no pair above K.

    .venv/bin/python bench/web_load.py [--users 50] [--duration 60] [--workers 5]

Everything stays on 127.0.0.1; the load generator shares the machine with the server,
so the numbers are a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REASONS = [
    "It answers the question directly and stays accurate.",
    "Clearer structure and no invented facts.",
    "Both are fine, but this one is more concise and polite.",
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50, help="concurrent annotators (max 200)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (max 600)")
    p.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of unmeasured load first, so every worker has loaded the app (max 60)",
    )
    p.add_argument("--pairs", type=int, default=20000, help="pairs in the dataset")
    p.add_argument("--overlap", type=int, default=2, help="annotators per pair (K)")
    p.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    p.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    p.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="server URL")
    p.add_argument("--db-name", default="gcai_bench_web")
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args()
    if not (1 <= args.users <= 200 and 1 <= args.duration <= 600 and 0 <= args.warmup <= 60):
        p.error("--users 1..200, --duration 1..600, --warmup 0..60 (the run is bounded)")
    host = urlparse(args.pg).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the benchmark only runs against a PostgreSQL server on this machine")
    return args


# --------------------------------------------------------------------------- database


def recreate_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, var_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "gcai.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "GCAI_VAR_DIR": var_dir,
            "CELERY_BROKER_URL": "memory://",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def seed(users: int, pairs: int, overlap: int) -> tuple[int, list[str]]:
    """Create the study, the dataset and the annotators (in this process, via the ORM)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotations.models import Dataset, Membership, PreferencePair, Role, Study

    study = Study.objects.create(name="Web load benchmark")
    dataset = Dataset.objects.create(study=study, name="load", annotation_overlap=overlap)
    batch = []
    for i in range(pairs):
        prompt = f"Question {i}: how should an assistant answer this **carefully**?"
        a, b = f"Answer A to {i}, with `code` and detail.", f"Answer B to {i}, shorter."
        batch.append(
            PreferencePair(
                dataset=dataset,
                external_id=f"load-{i}",
                prompt=prompt,
                response_a=a,
                response_b=b,
                content_hash=PreferencePair.hash_content(prompt, a, b),
            )
        )
    PreferencePair.objects.bulk_create(batch, batch_size=2000)
    User = get_user_model()
    tokens = []
    for i in range(users):
        user = User(username=f"load{i}")
        user.set_unusable_password()  # API tokens only: no password hashing cost
        user.save()
        Membership.objects.create(user=user, study=study, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    return study.pk, tokens


def count_check(study_id: int, overlap: int) -> dict[str, int]:
    from django.db import connection
    from django.db.models import Count

    from annotations.models import Annotation

    connection.close()  # the server wrote meanwhile; start from a fresh connection
    qs = Annotation.objects.filter(pair__dataset__study_id=study_id)
    per_pair = qs.values("pair_id").annotate(n=Count("id"))
    return {
        "annotations": qs.count(),
        "pairs_above_k": per_pair.filter(n__gt=overlap).count(),
        "duplicates": qs.values("pair_id", "annotator_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
    }


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GUNICORN_CONFIG = """
# Written by bench/web_load.py. Load the application and every URL module once in the
# master so forked workers do not each spend seconds importing on their first request.
preload_app = True


def when_ready(server):
    from django.urls import get_resolver

    get_resolver().url_patterns
"""


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int, log: Path):
    config = log.parent / "gunicorn_conf.py"
    config.write_text(GUNICORN_CONFIG)
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "gcai.wsgi:application",
        "--config",
        str(config),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--backlog",
        "2048",
        "--timeout",
        "60",
        # Longer than any pause between a client's requests, so a kept-alive connection is
        # never closed under a request in flight.
        "--keep-alive",
        "75",
    ]
    handle = open(log, "wb")  # noqa: SIM115 - closed by stop_gunicorn
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return proc, handle


def wait_healthy(port: int, proc, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("gunicorn did not become healthy")


def stop_gunicorn(proc, handle) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    handle.close()


# --------------------------------------------------------------------------- load


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"next": [], "submit": []}
        self.status: dict[str, dict[int, int]] = {"next": {}, "submit": {}}
        self.submitted = 0
        self.exhausted = 0
        self.errors: list[str] = []

    def record(self, kind: str, seconds: float, status: int) -> None:
        self.latency[kind].append(seconds)
        self.status[kind][status] = self.status[kind].get(status, 0) + 1


async def annotator(client, base: str, study_id: int, token: str, stop_at: float, stats: Stats):
    import httpx

    rng = random.Random(token)
    headers = {"Authorization": f"Token {token}"}
    next_url = f"{base}/api/studies/{study_id}/annotate/next/"
    submit_url = f"{base}/api/studies/{study_id}/annotate/submit/"
    while time.monotonic() < stop_at:
        try:
            t0 = time.perf_counter()
            r = await client.post(next_url, headers=headers)
            stats.record("next", time.perf_counter() - t0, r.status_code)
            if r.status_code != 200:
                continue
            pair = r.json()["pair"]
            if pair is None:
                stats.exhausted += 1
                return
            if time.monotonic() >= stop_at:
                return  # leave the lease; it simply expires
            body = {
                "pair_id": pair["pair_id"],
                "screen_choice": rng.choice(["first", "second", "tie"]),
                "reason": rng.choice(REASONS),
            }
            t0 = time.perf_counter()
            r = await client.post(submit_url, headers=headers, json=body)
            stats.record("submit", time.perf_counter() - t0, r.status_code)
            if r.status_code == 201:
                stats.submitted += 1
        except httpx.HTTPError as exc:
            stats.errors.append(f"{type(exc).__name__}: {exc}")


async def run_load(base: str, study_id: int, tokens: list[str], duration: float) -> Stats:
    import httpx

    stats = Stats()
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        stop_at = time.monotonic() + duration
        await asyncio.gather(
            *(annotator(client, base, study_id, t, stop_at, stats) for t in tokens)
        )
    return stats


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def report(args, stats: Stats, elapsed: float, check: dict[str, int], warmup_submits: int) -> bool:
    total = sum(len(v) for v in stats.latency.values())
    print(
        f"\nWeb load: {args.users} annotators for {args.duration:.0f} s against gunicorn "
        f"(after {args.warmup:.0f} s of unmeasured warm-up)"
    )
    print(
        f"  server: gunicorn gthread {args.workers} workers x {args.threads} threads, "
        f"PostgreSQL on 127.0.0.1, DEBUG=0; dataset {args.pairs} pairs, K={args.overlap}"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"  machine: {os.cpu_count()} CPUs shared by server, database and load generator; "
        f"load average at the end {load}"
    )
    print(f"  requests: {total} in {elapsed:.1f} s = {total / elapsed:.1f} req/s")
    print(f"  submits: {stats.submitted} = {stats.submitted / elapsed:.1f} annotations/s")
    print("  latency (ms)       n      p50      p95      p99      max")
    for kind in ("next", "submit"):
        ms = [1000 * s for s in stats.latency[kind]]
        print(
            f"    {kind:<8} {len(ms):>9} {percentile(ms, 0.5):>8.1f} {percentile(ms, 0.95):>8.1f} "
            f"{percentile(ms, 0.99):>8.1f} {max(ms, default=float('nan')):>8.1f}"
        )
    for kind in ("next", "submit"):
        print(f"  status {kind}: {dict(sorted(stats.status[kind].items()))}")
    if stats.exhausted:
        print(f"  annotators who ran out of pairs: {stats.exhausted}")
    if stats.errors:
        print(f"  transport errors: {len(stats.errors)} (first: {stats.errors[0]})")
    submits = warmup_submits + stats.submitted
    ok = check["annotations"] == submits and check["pairs_above_k"] == 0 and not check["duplicates"]
    print(
        f"  count check: annotations in DB = {check['annotations']}, successful submits = "
        f"{submits} ({warmup_submits} during warm-up + {stats.submitted} measured), pairs "
        f"above K = {check['pairs_above_k']}, duplicates = {check['duplicates']} -> "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    if stats.latency["next"]:
        print(f"  mean next latency: {statistics.fmean(stats.latency['next']) * 1000:.1f} ms")
    return ok


def main() -> int:
    args = parse_args()
    database_url = f"{args.pg}/{args.db_name}"
    var_dir = tempfile.mkdtemp(prefix="gcai-bench-web-")
    env = server_env(database_url, var_dir)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")})
    os.environ.update({k: env[k] for k in ("DEBUG", "SECRET_KEY", "SECURE_SSL_REDIRECT")})
    os.environ.update({k: env[k] for k in ("ALLOWED_HOSTS", "GCAI_VAR_DIR", "LOG_LEVEL")})
    os.environ["CELERY_BROKER_URL"] = env["CELERY_BROKER_URL"]

    print(f"Creating database {args.db_name} ...", flush=True)
    recreate_database(args.pg, args.db_name)
    proc = handle = None
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        t0 = time.monotonic()
        study_id, tokens = seed(args.users, args.pairs, args.overlap)
        print(
            f"Seeded {args.pairs} pairs and {args.users} annotators in {time.monotonic() - t0:.1f} s"
        )
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would give
        connection.close()

        port = free_port()
        log = Path(var_dir) / "gunicorn.log"
        proc, handle = start_gunicorn(env, port, args.workers, args.threads, log)
        wait_healthy(port, proc)
        print(
            f"gunicorn up on 127.0.0.1:{port}; running load for {args.duration:.0f} s ...",
            flush=True,
        )
        base = f"http://127.0.0.1:{port}"
        warm = asyncio.run(run_load(base, study_id, tokens, args.warmup)) if args.warmup else None
        started = time.monotonic()
        stats = asyncio.run(run_load(base, study_id, tokens, args.duration))
        elapsed = time.monotonic() - started
        stop_gunicorn(proc, handle)
        proc = None
        check = count_check(study_id, args.overlap)
        ok = report(args, stats, elapsed, check, warmup_submits=warm.submitted if warm else 0)
        return 0 if ok else 1
    finally:
        if proc is not None:
            stop_gunicorn(proc, handle)
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(args.pg, args.db_name)


if __name__ == "__main__":
    raise SystemExit(main())
