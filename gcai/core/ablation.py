"""The encoder ablation of the improved-ICAI paper (Table 3) as one comparison.

Improved ICAI variant 2 is run once per encoder alone and once with all of them
together, on the same pairs, model and settings; each run becomes one row of a table
(triplets selected, generation calls, principles, and a score the caller chooses, e.g.
accuracy on held-out pairs from :func:`gcai.core.evaluate.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gcai.core.embed import Embedder
from gcai.core.encoders import Encoder
from gcai.core.icai import IcaiConfig, IcaiResult, run_icai
from gcai.core.llm.base import ChatModel
from gcai.core.types import Constitution, Pair
from gcai.csvsafe import csv_text


@dataclass(slots=True)
class AblationRow:
    """One improved-2 run of the ablation."""

    encoders: list[str]
    triplets: int
    generation_calls: int
    principles: list[str] = field(default_factory=list)
    score: float | None = None

    @property
    def label(self) -> str:
        return " + ".join(self.encoders)


def encoder_sets(names: Sequence[str]) -> list[list[str]]:
    """Each encoder alone, then all together (the paper's Table 3 rows)."""
    sets = [[name] for name in names]
    if len(names) > 1:
        sets.append(list(names))
    return sets


def encoder_ablation(
    pairs: Sequence[Pair],
    model: ChatModel,
    embedder: Embedder,
    config: IcaiConfig,
    encoders: Mapping[str, Encoder],
    *,
    score: Callable[[Constitution], float | None] | None = None,
    sets: Sequence[Sequence[str]] | None = None,
    on_result: Callable[[list[str], IcaiResult], None] | None = None,
) -> list[AblationRow]:
    """Run improved 2 with each set of encoders (default :func:`encoder_sets`).

    ``config`` supplies every other setting; its method becomes ``icai_improved_2`` and
    its encoders the set of each row. ``score`` rates each resulting constitution.
    """
    rows = []
    for names in sets or encoder_sets(list(encoders)):
        chosen = list(names)
        missing = [n for n in chosen if n not in encoders]
        if missing:
            raise ValueError(f"encoders: no encoder named {missing[0]!r} was provided")
        settings = {**config.to_dict(), "method": "icai_improved_2", "encoders": chosen}
        run_config = IcaiConfig.from_dict(settings)
        result = run_icai(
            pairs, model, embedder, run_config, encoders={n: encoders[n] for n in chosen}
        )
        if on_result is not None:
            on_result(chosen, result)
        triplets = len(result.triplets.triplets) if result.triplets else 0
        rows.append(
            AblationRow(
                encoders=chosen,
                triplets=triplets,
                generation_calls=sum(
                    1 for p in result.proposals.items if p.status in ("ok", "error")
                ),
                principles=[p.text for p in result.constitution.principles],
                score=score(result.constitution) if score is not None else None,
            )
        )
    return rows


def ablation_markdown(rows: Sequence[AblationRow], score_name: str = "score") -> str:
    """The ablation as a Markdown table."""
    lines = [
        f"| encoders | triplets | generation calls | principles | {score_name} |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        value = "-" if r.score is None else f"{r.score:.3f}"
        lines.append(
            f"| {r.label} | {r.triplets} | {r.generation_calls} | {len(r.principles)} | {value} |"
        )
    return "\n".join(lines)


def ablation_csv(rows: Sequence[AblationRow], score_name: str = "score") -> str:
    """The ablation as CSV (one row per run), through the platform's one CSV writer."""
    header = ["encoders", "triplets", "generation_calls", "n_principles", score_name]
    return csv_text(
        header,
        (
            [
                r.label,
                r.triplets,
                r.generation_calls,
                len(r.principles),
                "" if r.score is None else r.score,
            ]
            for r in rows
        ),
    )
