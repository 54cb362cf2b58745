"""Import throughput and memory: 50,000 generated pairs (~100 MB of JSONL).

Generates a GCAI JSONL file in a temporary directory (every tenth pair carries an
annotation with a written reason), then, against a throwaway database created and
dropped by this script (the engine comes from DATABASE_URL, as for the app):

1. imports it into a new dataset through ``annotations.imports.pairs_import`` and
   reports wall time, rows per second and the process's peak RSS before and after
   (``resource.getrusage``): the growth is what the import needed;
2. imports the same file again into the same dataset (everything is a duplicate:
   the idempotent path, which still parses every line);
3. imports it into a second dataset under ``tracemalloc`` and reports the peak of
   Python allocations (slower: tracing has a cost, so its time is not the headline).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gcai .venv/bin/python bench/import_pairs.py
    .venv/bin/python bench/import_pairs.py --pairs 5000 --no-tracemalloc   # SQLite, quick
    ... --debug    # DEBUG as configured (development default: on)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gcai.settings")

WORDS = [
    "the",
    "a",
    "model",
    "answer",
    "response",
    "user",
    "question",
    "because",
    "which",
    "careful",
    "honest",
    "helpful",
    "harm",
    "safety",
    "context",
    "example",
    "explain",
    "reason",
    "privacy",
    "evidence",
    "clear",
    "concise",
    "polite",
    "people",
    "value",
    "fair",
    "source",
    "data",
    "assistant",
    "prompt",
    "request",
    "therefore",
    "however",
    "although",
    "consider",
    "detail",
    "summary",
    "risk",
    "benefit",
    "option",
    "choice",
    "principle",
    "culture",
    "language",
]


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def generate(path: Path, *, pairs: int, seed: int = 0) -> int:
    """Write ``pairs`` JSONL lines of ~2 KB each; returns the file size in bytes."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(pairs):
            row = {
                "id": f"bench-{i}",
                "prompt": f"[{i}] " + _text(rng, 35),
                "response_a": _text(rng, 100),
                "response_b": _text(rng, 100),
                "preferred": rng.choice("ab"),
                "reason": _text(rng, 20),
                "score_a": round(rng.uniform(1, 10), 1),
                "score_b": round(rng.uniform(1, 10), 1),
                "source": "bench",
            }
            if i % 10 == 0:
                row["annotations"] = [
                    {
                        "annotator": f"ext-{i % 37}",
                        "preferred": row["preferred"],
                        "reason": row["reason"],
                    }
                ]
            out.write(json.dumps(row) + "\n")
    return path.stat().st_size


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--no-tracemalloc", action="store_true", help="Skip pass 3.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Keep DEBUG as configured (on by default in development: Django then logs SQL).",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from annotations.imports import pairs_import
    from annotations.models import Study

    # Production runs with DEBUG off; with it on Django formats every query for its log.
    if not args.debug:
        settings.DEBUG = False
    results: dict = {"pairs": args.pairs, "database": connection.vendor, "debug": settings.DEBUG}
    with tempfile.TemporaryDirectory(prefix="gcai-bench-") as tmp:
        path = Path(tmp) / "pairs.jsonl"
        started = time.perf_counter()
        size = generate(path, pairs=args.pairs)
        results["file_mb"] = round(size / 1e6, 1)
        results["generate_s"] = round(time.perf_counter() - started, 1)

        # A throwaway database: the benchmark never touches real data.
        name = (
            str(Path(tmp) / "bench.sqlite3")
            if connection.vendor == "sqlite"
            else f"gcai_bench_{os.getpid()}"
        )
        connection.settings_dict["TEST"]["NAME"] = name
        settings.GCAI_IMPORT_MAX_BYTES = max(settings.GCAI_IMPORT_MAX_BYTES, size + 1)
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            study = Study.objects.create(name="Import benchmark")
            results["rss_before_import_mb"] = round(peak_rss_mb(), 1)

            started = time.perf_counter()
            report = pairs_import(study=study, dataset_name="bench", file=path)
            elapsed = time.perf_counter() - started
            assert report.created == args.pairs, report
            results["import_s"] = round(elapsed, 1)
            results["import_pairs_per_s"] = round(args.pairs / elapsed)
            results["import_mb_per_s"] = round(size / 1e6 / elapsed, 1)
            results["annotations_created"] = report.annotations_created
            results["peak_rss_after_import_mb"] = round(peak_rss_mb(), 1)
            results["rss_growth_mb"] = round(
                results["peak_rss_after_import_mb"] - results["rss_before_import_mb"], 1
            )

            started = time.perf_counter()
            again = pairs_import(study=study, dataset_name="bench", file=path)
            assert (again.created, again.duplicates) == (0, args.pairs), again
            results["reimport_all_duplicates_s"] = round(time.perf_counter() - started, 1)
            results["peak_rss_after_reimport_mb"] = round(peak_rss_mb(), 1)

            if not args.no_tracemalloc:
                tracemalloc.start()
                started = time.perf_counter()
                pairs_import(study=study, dataset_name="bench-traced", file=path)
                results["traced_import_s"] = round(time.perf_counter() - started, 1)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                results["tracemalloc_peak_mb"] = round(peak / 1e6, 1)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
