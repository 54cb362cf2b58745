"""Real AlpacaEval pairs for the benchmarks (not a benchmark itself).

The data lives outside the repository; ``--data DIR`` names the directory of
``*.jsonl`` files (default: ``../shared/data/alpacaeval-reasons`` beside the checkout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gcai.core.types import Pair, Preference

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpacaeval-reasons"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"directory of AlpacaEval *.jsonl files (default {DEFAULT_DATA})",
    )


def real_rows(data: Path) -> list[dict]:
    """Every row of every ``*.jsonl`` file in ``data``, files in name order."""
    files = sorted(Path(data).glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no *.jsonl files in {data} (pass --data DIR)")
    return [json.loads(line) for path in files for line in path.open(encoding="utf-8")]


def real_pairs(data: Path, limit: int | None = None) -> list[Pair]:
    """Decisive pairs (a or b) from every file, in file order."""
    pairs = [
        Pair(
            id=str(row["id"]),
            prompt=row["prompt"],
            response_a=row["response_a"],
            response_b=row["response_b"],
            preferred=Preference(row["preferred"]),
        )
        for row in real_rows(data)
        if row.get("preferred") in ("a", "b")
    ]
    return pairs[:limit] if limit else pairs


def distinct_pairs(data: Path, limit: int) -> list[Pair]:
    """Up to ``limit`` decisive pairs whose responses appear in no other chosen pair."""
    out: list[Pair] = []
    seen: set[str] = set()
    for pair in real_pairs(data):
        a, b = pair.response_a, pair.response_b
        if a in seen or b in seen or a == b:
            continue
        seen.update((a, b))
        out.append(pair)
        if len(out) >= limit:
            break
    return out
