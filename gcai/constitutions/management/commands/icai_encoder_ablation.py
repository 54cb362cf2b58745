"""``manage.py icai_encoder_ablation FILE``: the improved-ICAI encoder ablation (Table 3)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gcai.constitutions import llm
from gcai.core import presets
from gcai.core.ablation import ablation_csv, ablation_markdown, encoder_ablation
from gcai.core.encoders import OFFLINE_ENCODERS, build_encoders, validate_encoder_names
from gcai.core.evaluate import evaluate
from gcai.core.icai import IcaiConfig
from gcai.core.types import Constitution, Pair, Preference


def read_pairs(path: Path) -> list[Pair]:
    """Decisive pairs from a JSON Lines file with prompt, response_a, response_b, preferred."""
    pairs = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            preferred = Preference(str(row.get("preferred", "")).lower())
            pair = Pair(
                id=str(row.get("id", number)),
                prompt=str(row.get("prompt", "")),
                response_a=str(row["response_a"]),
                response_b=str(row["response_b"]),
                preferred=preferred,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CommandError(f"{path}:{number}: not a preference pair ({exc})") from exc
        if preferred.is_decisive:
            pairs.append(pair)
    if not pairs:
        raise CommandError(f"{path}: no pair with a decisive preference (a or b)")
    return pairs


class Command(BaseCommand):
    help = (
        "Run improved ICAI variant 2 with each encoder alone and all together on a JSON "
        "Lines file of pairs, evaluate each constitution on a held-out share, and print "
        "one table (the improved-ICAI paper's Table 3). Runs in this process with the "
        "configured LLM and embedder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--encoders", nargs="+", default=list(OFFLINE_ENCODERS))
        parser.add_argument("--test-share", type=float, default=0.3)
        parser.add_argument("--limit", type=int, help="Use at most N pairs (seeded sample).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="Also write ablation.csv and .md here.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            validate_encoder_names(opts["encoders"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not 0 < opts["test_share"] < 1:
            raise CommandError("--test-share must be between 0 and 1")
        pairs = read_pairs(opts["file"])
        rng = random.Random(opts["seed"])
        rng.shuffle(pairs)
        if opts["limit"]:
            pairs = pairs[: opts["limit"]]
        n_test = max(1, round(len(pairs) * opts["test_share"]))
        test, train = pairs[:n_test], pairs[n_test:]
        if not train:
            raise CommandError("no training pairs left after the test share")
        model = llm.chat_model_for()
        embedder = llm.embedder()
        # The content encoder of the current improved-2 preset (the fast one).
        tokens = presets.get("icai_improved_2").settings.get("fast_content_tokens")
        content = llm.fast_content_embedder(tokens) if tokens else embedder
        encoders = build_encoders(
            opts["encoders"], content=content, cache=getattr(content, "cache", None)
        )

        def accuracy(constitution: Constitution) -> float | None:
            return evaluate(model, constitution, test).metrics.accuracy_per_order.value

        def progress(names: list[str], result: Any) -> None:
            self.stderr.write(
                f"{' + '.join(names)}: {len(result.constitution.principles)} principles"
            )

        rows = encoder_ablation(
            train,
            model,
            embedder,
            IcaiConfig(seed=opts["seed"], fast_content_tokens=tokens),
            encoders,
            score=accuracy,
            on_result=progress,
        )
        name = f"accuracy ({len(test)} held-out pairs)"
        table = ablation_markdown(rows, name)
        self.stdout.write(table)
        if opts["out"]:
            opts["out"].mkdir(parents=True, exist_ok=True)
            (opts["out"] / "ablation.md").write_text(table + "\n", encoding="utf-8")
            (opts["out"] / "ablation.csv").write_text(
                ablation_csv(rows, "accuracy"), encoding="utf-8"
            )
