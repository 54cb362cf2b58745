"""Throughput of the deployed path: PostgreSQL + Redis + a real Celery worker.

ICAI on the AlpacaEval pairs (805 by default, from ../shared/data) with 40 clusters,
driven exactly as the web app drives it (``run_create`` + ``run_start``), executed by a
real ``celery worker`` process against a fake OpenAI-compatible server with a fixed
latency (200 ms). Prints the chat calls, the wall time of the run, the ideal time
``calls x latency / concurrency budget`` and the worker's CPU time per call.

It works on a throw-away database next to the one in DATABASE_URL (created, migrated
and dropped) and a private queue on CELERY_BROKER_URL::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gcai \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \\
    .venv/bin/python bench/deployed.py [--pairs 805] [--latency 0.2] [--clusters 40]

The concurrency budget is ``--processes`` x ``--llm-concurrency`` (2 x 16 by default).
With ``--pool prefork`` that is one worker with ``--processes`` pool processes, each
running one batch at a time; with ``--pool threads`` (what ``make worker`` runs) it is
``--processes`` worker processes, each running ``--threads`` batches at once on one
bounded client, so a batch's slow last calls leave slots the other batches fill.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = (
    ROOT.parent / "shared" / "data" / "alpacaeval-reasons" / "mistral-7b-vs-gpt4turbo.jsonl"
)
TOPICS = [
    "accuracy", "detail", "structure", "tone", "brevity", "examples", "safety", "clarity",
    "sources", "creativity", "steps", "caveats", "formatting", "empathy", "precision",
    "completeness", "relevance", "humour", "politeness", "code quality",
]  # fmt: skip
VERBS = ["favours", "rewards", "shows more", "handles better", "puts first", "is stronger on"]


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants still alive (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _tamper(purpose: str, request: dict):
    """Varied candidate principles, as a real model gives, so 40 clusters make sense."""
    if purpose != "icai.generate":
        return None
    digest = hashlib.sha256(json.dumps(request["messages"]).encode()).digest()
    topic = TOPICS[digest[0] % len(TOPICS)]
    verb = VERBS[digest[1] % len(VERBS)]
    return {"principles": [f"Select the response that {verb} {topic}."]}


def _small_copy(study, warm, n: int = 30):
    """The first ``n`` training pairs of ``study`` copied into ``warm`` (other ids, so the
    measured run still finds nothing in the LLM cache: the prompts carry a marker)."""
    from annotations.models import Dataset, PreferencePair

    dataset = Dataset.objects.create(study=warm, name="warm-up")
    for p in PreferencePair.objects.filter(dataset__study=study).order_by("pk")[:n]:
        PreferencePair.objects.create(
            dataset=dataset,
            external_id=f"warm-{p.pk}",
            prompt=f"(warm-up) {p.prompt}",
            response_a=p.response_a,
            response_b=p.response_b,
            source_preference=p.source_preference,
            split=p.split,
        )
    return warm


def _run_to_end(runs, model, study, clusters: int, timeout: float):
    run = runs.run_create(study=study, method="icai", method_config={"num_clusters": clusters})
    runs.run_start(run=run)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        run = model.objects.get(pk=run.pk)
        if not run.is_active:
            return run
        time.sleep(0.05)
    sys.exit("warm-up run did not finish")


def _wait_ready(worker: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"worker exited:\n{log_path.read_text()[-3000:]}")
        if "ready." in log_path.read_text(errors="replace"):
            time.sleep(2)  # the pool processes finish importing
            return
        time.sleep(0.2)
    sys.exit(f"worker not ready after {timeout}s")


def _print_timeline(run, started_at: float) -> None:
    """When each stage's batches and merged output were stored, in seconds from the start."""
    from django.db.models import Count, Max, Min

    from gcai.constitutions.models import StageArtifact

    rows = (
        StageArtifact.objects.filter(run=run)
        .values("stage")
        .annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"))
        .order_by("first")
    )
    print("  stage              artifacts  first s   last s")
    for row in rows:
        first = row["first"].timestamp() - started_at
        last = row["last"].timestamp() - started_at
        print(f"  {row['stage']:<18}{row['n']:>10}{first:>9.1f}{last:>9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=805)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--clusters", type=int, default=40)
    parser.add_argument("--pool", choices=["prefork", "threads"], default="threads")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="batches at once per process")
    parser.add_argument("--llm-concurrency", type=int, default=16, help="per worker process")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not base_url.startswith("postgres") or not broker.startswith("redis"):
        sys.exit("Set DATABASE_URL (postgres://...) and CELERY_BROKER_URL (redis://...).")
    if not args.data.exists():
        sys.exit(f"{args.data} is missing (the AlpacaEval file from ../shared/data).")
    db_name = f"gcai_bench_{uuid.uuid4().hex[:8]}"
    db_url = base_url.rsplit("/", 1)[0] + "/" + db_name
    queue = f"gcai-bench-{uuid.uuid4().hex[:8]}"
    var_dir = Path(os.environ.get("TMPDIR", "/tmp")) / db_name
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "GCAI_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "gcai.settings",
    }
    _pg_admin(base_url, f'CREATE DATABASE "{db_name}"')
    workers: list[subprocess.Popen] = []
    logs: list = []
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        os.environ.update(env)
        import django

        django.setup()
        from annotations.imports import pairs_import
        from annotations.models import PreferencePair, Split, Study
        from gcai.constitutions import runs
        from gcai.constitutions.models import PipelineRun
        from tests.constitutions.judge_server import judge_responder
        from tests.core.scripted import NOISE, Judge, Rule
        from tests.fakes import FakeOpenAIServer

        study = Study.objects.create(name="Throughput")
        lines = args.data.read_text().splitlines()[: args.pairs]
        subset = var_dir / "pairs.jsonl"
        subset.write_text("\n".join(lines) + "\n")
        pairs_import(study=study, dataset_name="alpacaeval", file=subset)
        PreferencePair.objects.filter(dataset__study=study).update(split=Split.TRAIN)
        detail = Rule(
            "detailed", "Select the response that is more detailed.", (), lambda t: len(t) > 1500
        )
        responder = judge_responder(Judge((detail,), noise=NOISE), tamper=_tamper)

        with FakeOpenAIServer(responder=responder, latency=args.latency) as server:
            worker_env = {
                **env,
                "GCAI_LLM_BACKEND": "openai",
                "GCAI_LLM_BASE_URL": server.base_url,
                "OPENAI_API_KEY": "bench",
                "GCAI_LLM_MODEL": "fake-judge",
                "GCAI_EMBEDDINGS": "openai",
                "GCAI_EMBEDDING_MODEL": "fake-embed",
                "GCAI_LLM_CONCURRENCY": str(args.llm_concurrency),
            }
            if args.pool == "threads":
                commands = [
                    ["--pool=threads", f"--concurrency={args.threads}", "-n", f"{queue}-{i}@%h"]
                    for i in range(args.processes)
                ]
            else:
                commands = [
                    ["--pool=prefork", f"--concurrency={args.processes}", "-n", f"{queue}@%h"]
                ]
            budget = args.processes * args.llm_concurrency
            for i, pool in enumerate(commands):
                log_path = var_dir / f"worker-{i}.log"
                log = open(log_path, "wb")  # noqa: SIM115 - closed below
                logs.append(log)
                argv = [sys.executable, "-m", "celery", "-A", "gcai", "worker", "-Q", queue]
                argv += [*pool, "--loglevel=INFO", "--without-heartbeat", "--without-gossip"]
                argv += ["--without-mingle"]
                workers.append(
                    subprocess.Popen(
                        argv, cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
            for i, worker in enumerate(workers):
                _wait_ready(worker, var_dir / f"worker-{i}.log")
            from gcai.celery import app

            app.conf.task_default_queue = queue
            # A small run first, so the pool processes have imported everything.
            warm = Study.objects.create(name="Warm-up")
            _run_to_end(runs, PipelineRun, _small_copy(study, warm), 4, args.timeout)
            server.reset()
            cpu_before = sum(_cpu_seconds(w.pid) for w in workers)
            run = runs.run_create(
                study=study, method="icai", method_config={"num_clusters": args.clusters}
            )
            started, started_at = time.perf_counter(), time.time()
            runs.run_start(run=run)
            deadline = started + args.timeout
            while time.perf_counter() < deadline:
                run = PipelineRun.objects.get(pk=run.pk)
                if not run.is_active:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - started
            cpu = sum(_cpu_seconds(w.pid) for w in workers) - cpu_before
            calls = server.chat_calls
            max_in_flight = server.max_in_flight
        for log in logs:
            log.close()
        if run.status != "succeeded":
            print((var_dir / "worker-0.log").read_text()[-3000:])
            sys.exit(f"run {run.status}: {run.error[:2000]}")
        ideal = calls * args.latency / budget
        _print_timeline(run, started_at)
        print(f"ICAI on {args.pairs} AlpacaEval pairs, {args.clusters} clusters, deployed path")
        print(
            f"  worker: {args.pool}, "
            + (
                f"1 worker with {args.processes} pool processes"
                if args.pool == "prefork"
                else f"{args.processes} worker processes x {args.threads} batches at once"
            )
            + f", LLM concurrency {args.llm_concurrency} per process (budget {budget})"
        )
        print(f"  chat calls           {calls} (run counted {run.llm_calls})")
        print(f"  wall                 {wall:.1f} s")
        print(
            f"  ideal                {ideal:.1f} s  (calls x {args.latency * 1000:.0f} ms / {budget})"
        )
        print(f"  wall / ideal         {wall / ideal:.2f}")
        print(f"  worker CPU           {cpu:.1f} s = {cpu / calls * 1000:.1f} ms per call")
        print(f"  max in flight        {max_in_flight}")
        print(f"  machine: {os.cpu_count()} CPUs shared with the database, Redis and this process")
        return 0
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            _pg_admin(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
