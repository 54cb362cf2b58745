"""Does a constitution steer a model? Generation, pairwise judging and the report.

Follows the improved-ICAI paper (§3.4): a target model answers each prompt with and
without the constitution in its prompt (optionally with a second constitution, e.g.
GCAI vs ICAI), an LLM judge compares the two answers in both orders, and the report
gives the win rate, ties, the change in length and a length-controlled win rate in the
spirit of AlpacaEval 2.0's LC (Dubois et al. 2024): a logistic regression of the judge's
preference on the normalised length difference, read off at zero length difference.
Our regression drops AlpacaEval's per-instruction difficulty term (we compare two
variants of one model, not many models); see docs/methods.md.

Also the supervised stage of Constitutional AI (Bai et al. 2022, §3): a response, a
critique against one sampled principle, and a revision, as one conversation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gcai.core import prompts
from gcai.core.cluster import stable_rng
from gcai.core.llm.base import ChatModel, ChatRequest, ChatResult
from gcai.core.serial import Stored
from gcai.core.stats import proportion
from gcai.core.training_data import prompt_messages
from gcai.core.types import Message

NONE = "none"  # the variant answered without a constitution
VARIANTS = (NONE, "a", "b")
JUDGE_PROMPT = "steer_judge_v1"
JUDGE_SCHEMA: dict[str, Any] = {
    "title": "steering_verdict",
    "type": "object",
    "properties": {"preferred": {"type": "string", "enum": ["1", "2", "tie"]}},
    "required": ["preferred"],
    "additionalProperties": False,
}
CRITIQUE_REQUEST = (
    "Identify specific ways in which your last response does not follow this principle, "
    "and say briefly how it could:\n$principle"
)
REVISION_REQUEST = (
    "Rewrite your response so that it follows this principle:\n$principle\n"
    "Reply with the rewritten response only."
)


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    placement: str = "user"  # where the constitution goes: "user" or "system"
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 0


def comparisons(has_b: bool) -> list[tuple[str, str]]:
    """Which variants are compared: (x, y) with x the side whose wins are counted."""
    pairs = [("a", NONE)]
    if has_b:
        pairs += [("b", NONE), ("a", "b")]
    return pairs


def comparison_name(x: str, y: str) -> str:
    return f"{x}_vs_{y}"


# --------------------------------------------------------------------------- generation


def generation_request(
    prompt: str, block: str, settings: GenerationSettings, *, purpose: str = "steer.generate"
) -> ChatRequest:
    """The target model's request: the prompt, with ``block`` placed as configured."""
    turns = prompt_messages(prompt, None, block, settings.placement)
    return ChatRequest(
        messages=[Message(t["role"], t["content"]) for t in turns],
        temperature=settings.temperature,
        seed=settings.seed,
        max_tokens=settings.max_tokens,
        purpose=purpose,
    )


def _text(result: ChatResult) -> tuple[str, str | None]:
    if result.error is not None:
        return "", str(result.error)
    text = (result.text or "").strip()
    return (text, None) if text else ("", "empty response")


def generate(
    items: Sequence[tuple[int, str]],
    prompt_texts: Sequence[str],
    blocks: dict[str, str],
    model: ChatModel,
    settings: GenerationSettings,
) -> dict[str, Any]:
    """Answer each (prompt index, variant) item; ``blocks[variant]`` conditions it."""
    requests = [generation_request(prompt_texts[i], blocks.get(v, ""), settings) for i, v in items]
    out = []
    for (i, variant), result in zip(items, model.complete_many(requests), strict=True):
        text, error = _text(result)
        out.append({"i": i, "variant": variant, "text": text, "error": error})
    return {"responses": out}


# --------------------------------------------------------------------------- judging


def judge_request(prompt: str, first: str, second: str) -> ChatRequest:
    messages = prompts.render(JUDGE_PROMPT, prompt=prompt, response_1=first, response_2=second)
    return ChatRequest(messages=messages, schema=JUDGE_SCHEMA, purpose="steer.judge")


def _verdict(result: ChatResult, x_first: bool) -> str | None:
    """The judge's answer in x/y terms, or None when it failed or was malformed."""
    if result.error is not None or not isinstance(result.parsed, dict):
        return None
    choice = str(result.parsed.get("preferred", "")).strip().lower()
    if choice == "tie":
        return "tie"
    if choice not in ("1", "2"):
        return None
    return "x" if (choice == "1") == x_first else "y"


def judge(
    items: Sequence[tuple[int, str, str]],
    prompt_texts: Sequence[str],
    responses: dict[tuple[int, str], str],
    model: ChatModel,
) -> dict[str, Any]:
    """Judge each (prompt index, x, y) item in both orders (x first, then y first).

    A missing response (the target failed) is not judged; its item records why.
    """
    asked: list[tuple[int, str, str]] = []
    requests: list[ChatRequest] = []
    out: list[dict[str, Any]] = []
    for i, x, y in items:
        tx, ty = responses.get((i, x), ""), responses.get((i, y), "")
        if not tx or not ty:
            out.append({"i": i, "x": x, "y": y, "verdicts": [], "error": "missing response"})
            continue
        asked.append((i, x, y))
        requests += [
            judge_request(prompt_texts[i], tx, ty),
            judge_request(prompt_texts[i], ty, tx),
        ]
    results = model.complete_many(requests) if requests else []
    for n, (i, x, y) in enumerate(asked):
        first, second = results[2 * n], results[2 * n + 1]
        verdicts = [_verdict(first, True), _verdict(second, False)]
        errors = [str(r.error) for r in (first, second) if r.error is not None]
        out.append(
            {"i": i, "x": x, "y": y, "verdicts": verdicts, "error": "; ".join(errors) or None}
        )
    return {"judgements": out}


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class PromptOutcome:
    """One prompt of one comparison: lengths (characters) and the two orders' verdicts."""

    i: int
    len_x: int
    len_y: int
    verdicts: tuple[str | None, ...]

    @property
    def scores(self) -> list[float]:
        return [{"x": 1.0, "tie": 0.5, "y": 0.0}[v] for v in self.verdicts if v is not None]

    @property
    def score(self) -> float | None:
        s = self.scores
        return sum(s) / len(s) if s else None


@dataclass(slots=True)
class ComparisonReport(Stored):
    name: str
    x: str
    y: str
    n_prompts: int = 0  # prompts with at least one valid verdict
    n_judgements: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    failed: int = 0  # judgements or prompts without a usable verdict
    win_rate: dict[str, Any] | None = None  # Estimate.to_dict(): value, lo, hi, n, k
    lc_win_rate: float | None = None
    lc_slope: float | None = None
    lc_note: str = ""
    median_length_diff: float | None = None
    mean_length_x: float | None = None
    mean_length_y: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def length_controlled_win_rate(
    outcomes: Sequence[PromptOutcome], *, c: float = 10.0
) -> tuple[float | None, float | None, str]:
    """Predicted win rate at zero length difference, and the length coefficient.

    One row per judgement (a tie is two half-weight rows, a win and a loss); the
    feature is ``tanh(Δlength / sd(Δlength))`` as in AlpacaEval's LC. A mild L2 penalty
    on the length coefficient (``c``: inverse strength, weak by default; lbfgs does not penalise
    the intercept with lbfgs) keeps the fit finite when length separates the outcomes.
    """
    from sklearn.linear_model import LogisticRegression

    diffs = [o.len_x - o.len_y for o in outcomes if o.scores]
    if not diffs:
        return None, None, "no judged prompts"
    sd = statistics.pstdev(diffs)
    features: list[float] = []
    labels: list[int] = []
    weights: list[float] = []
    for o in outcomes:
        feature = math.tanh((o.len_x - o.len_y) / sd) if sd > 0 else 0.0
        for s in o.scores:
            for label, weight in ((1, s), (0, 1.0 - s)):
                if weight > 0:
                    features.append(feature)
                    labels.append(label)
                    weights.append(weight)
    if len(set(labels)) < 2:
        # Every judgement went one way: nothing separates a length effect from it.
        rate = float(labels[0])
        return rate, 0.0, "every judgement went one way; the rate is not adjusted"
    fit = LogisticRegression(C=c, solver="lbfgs")
    fit.fit([[f] for f in features], labels, sample_weight=weights)
    intercept = float(fit.intercept_[0])
    note = "" if sd > 0 else "no length difference; the rate is not adjusted"
    return 1.0 / (1.0 + math.exp(-intercept)), float(fit.coef_[0][0]), note


def comparison_report(
    x: str,
    y: str,
    outcomes: Sequence[PromptOutcome],
    *,
    failed: int = 0,
    confidence: float = 0.95,
) -> ComparisonReport:
    """Win rate of x over y (ties count half) with a Wilson interval over prompts, the
    length-controlled rate, ties and length differences."""
    report = ComparisonReport(name=comparison_name(x, y), x=x, y=y, failed=failed)
    judged = [o for o in outcomes if o.score is not None]
    report.failed += sum(1 for o in outcomes for v in o.verdicts if v is None)
    report.n_prompts = len(judged)
    for o in judged:
        for v in o.verdicts:
            if v is None:
                continue
            report.n_judgements += 1
            report.wins += v == "x"
            report.losses += v == "y"
            report.ties += v == "tie"
    if judged:
        # Each prompt counts once (its two orders averaged): the orders are not independent.
        k = sum(o.score or 0.0 for o in judged)
        report.win_rate = proportion(k, len(judged), confidence).to_dict()
        report.lc_win_rate, report.lc_slope, report.lc_note = length_controlled_win_rate(judged)
        diffs = [o.len_x - o.len_y for o in judged]
        report.median_length_diff = float(statistics.median(diffs))
        report.mean_length_x = statistics.fmean(o.len_x for o in judged)
        report.mean_length_y = statistics.fmean(o.len_y for o in judged)
    report.rows = [
        {
            "i": o.i,
            "len_x": o.len_x,
            "len_y": o.len_y,
            "verdicts": list(o.verdicts),
            "score": o.score,
        }
        for o in outcomes
    ]
    return report


def report(
    prompt_texts: Sequence[str],
    responses: dict[tuple[int, str], str],
    judgements: Sequence[dict[str, Any]],
    has_b: bool,
) -> dict[str, Any]:
    """The full report: one :class:`ComparisonReport` per comparison."""
    out: dict[str, Any] = {"n_prompts": len(prompt_texts), "comparisons": []}
    for x, y in comparisons(has_b):
        mine = [j for j in judgements if j["x"] == x and j["y"] == y]
        outcomes = [
            PromptOutcome(
                i=j["i"],
                len_x=len(responses.get((j["i"], x), "")),
                len_y=len(responses.get((j["i"], y), "")),
                verdicts=tuple(j["verdicts"]),
            )
            for j in sorted(mine, key=lambda j: j["i"])
            if j["verdicts"]
        ]
        failed = sum(1 for j in mine if not j["verdicts"])
        out["comparisons"].append(comparison_report(x, y, outcomes, failed=failed).to_dict())
    return out


# --------------------------------------------------------------------------- critique


def sampled_principle(principles: Sequence[str], seed: int, i: int) -> str:
    """The principle that drives prompt ``i``'s critique: the same in every worker."""
    return stable_rng("critique", seed, i).choice(list(principles))


def critique_revise(
    indices: Sequence[int],
    prompt_texts: Sequence[str],
    principles: Sequence[str],
    model: ChatModel,
    settings: GenerationSettings,
) -> dict[str, Any]:
    """Response, critique against a sampled principle, revision: three rounds of calls
    over the batch, each round one ``complete_many``."""
    from string import Template

    rows: dict[int, dict[str, Any]] = {
        i: {
            "i": i,
            "prompt": prompt_texts[i],
            "principle": sampled_principle(principles, settings.seed, i),
            "response": "",
            "critique": "",
            "revision": "",
            "error": None,
        }
        for i in indices
    }

    def conversation(row: dict[str, Any], upto: str) -> list[Message]:
        turns = [Message("user", row["prompt"]), Message("assistant", row["response"])]
        critique = Template(CRITIQUE_REQUEST).substitute(principle=row["principle"])
        turns.append(Message("user", critique))
        if upto == "revision":
            turns.append(Message("assistant", row["critique"]))
            turns.append(
                Message("user", Template(REVISION_REQUEST).substitute(principle=row["principle"]))
            )
        return turns

    def ask(field_name: str, build) -> None:
        live = [r for r in rows.values() if r["error"] is None]
        requests = [
            ChatRequest(
                messages=build(r),
                temperature=settings.temperature,
                seed=settings.seed,
                max_tokens=settings.max_tokens,
                purpose=f"critique.{field_name}",
            )
            for r in live
        ]
        for r, result in zip(live, model.complete_many(requests) if requests else [], strict=True):
            text, error = _text(result)
            r[field_name] = text
            r["error"] = f"{field_name}: {error}" if error else None

    ask("response", lambda r: [Message("user", r["prompt"])])
    ask("critique", lambda r: conversation(r, "critique"))
    ask("revision", lambda r: conversation(r, "revision"))
    return {"rows": [rows[i] for i in indices]}
