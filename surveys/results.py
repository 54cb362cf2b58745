"""The statistics researchers report from a pairwise survey.

Per comparison question: counts of a / b / tie / both bad, the share preferring each
constitution with a 95% Wilson interval, an exact two-sided binomial test against 0.5,
and Holm's correction across the questions. Across questions: a test for a left-side
(position) bias. Per principle: mean Likert rating with an interval that stays on the
1-5 scale (:func:`gcai.core.stats.bounded_mean_interval`). Every number computed from
fewer than ``stats.MIN_N_RATINGS`` participants carries a warning.

Only completed responses count. Screened-out (failed attention check) and unfinished
responses are excluded from every number and reported as counts instead.

Ties and "both bad" carry no preference. By default they are reported separately and
left out of the share (share = a / (a + b)); with ``Survey.ties_in_share`` they stay in
the denominator (share = a / all answers), i.e. the share of ALL participants who
preferred that constitution, which is how some papers report it.

The formulas live in :mod:`gcai.core.stats`; this module only gathers the counts with a
fixed number of queries and shapes them for pages, the API and CSV.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import Count, Q

from gcai.constitutions.models import ConstitutionPrinciple
from gcai.core import stats
from surveys.models import (
    Answer,
    PrincipleRating,
    QuestionKind,
    ResponseStatus,
    Survey,
    SurveyChoice,
    SurveyResponse,
)

ALPHA = 0.05
RATING_SCALE = (1, 5)  # the Likert range the database enforces (rating_likert_range)
# Short names for the default questions, for charts and table rows (keys are for files).
QUESTION_LABELS = {
    "moral_grounding": "Moral grounding",
    "personal_preference": "Personal preference",
    "coherence": "Coherence",
    "plurality": "Plurality of views",
    "wide_governance": "Fit to govern AI in wide use",
    "attention_check": "Attention check",
}


def question_label(key: str) -> str:
    """A readable name for a question: known keys by name, others de-snake-cased."""
    return QUESTION_LABELS.get(key) or key.replace("_", " ").strip().capitalize() or key


@dataclass(frozen=True, slots=True)
class ShareResult:
    """``k`` of ``n`` preferred one constitution: share, Wilson interval, binomial p."""

    k: int
    n: int
    share: float | None
    lo: float
    hi: float
    p_value: float

    @classmethod
    def of(cls, k: int, n: int) -> ShareResult:
        t = stats.proportion_test(k, n, p0=0.5)
        return cls(k=k, n=n, share=t.share, lo=t.lo, hi=t.hi, p_value=t.p_value)


@dataclass(frozen=True, slots=True)
class QuestionResult:
    position: int
    key: str
    text: str
    n_a: int
    n_b: int
    n_tie: int
    n_both_bad: int
    a: ShareResult  # share preferring constitution A
    b: ShareResult  # share preferring constitution B (same test, mirrored)
    p_holm: float

    @property
    def label(self) -> str:
        return question_label(self.key)

    @property
    def n_answers(self) -> int:
        return self.n_a + self.n_b + self.n_tie + self.n_both_bad

    @property
    def warning(self) -> str:
        return stats.small_sample_warning(self.a.n, stats.MIN_N_RATINGS, "answers")

    @property
    def p_value(self) -> float:
        return self.a.p_value

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    @property
    def favours(self) -> str | None:
        """ "a" or "b" when the difference survives Holm's correction, else None."""
        if not self.significant:
            return None
        return "a" if self.n_a > self.n_b else "b"


@dataclass(frozen=True, slots=True)
class SideBiasResult:
    """Decisive answers that chose the left vs the right constitution on screen."""

    left: int
    right: int
    share_left: float | None
    lo: float
    hi: float
    p_value: float


@dataclass(frozen=True, slots=True)
class RatingResult:
    side: str  # "a" or "b": which constitution the principle belongs to
    position: int
    text: str
    n: int
    mean: float | None
    sd: float | None
    lo: float | None
    hi: float | None
    method: str = "bayes-bootstrap"

    @property
    def warning(self) -> str:
        return stats.small_sample_warning(self.n, stats.MIN_N_RATINGS, "ratings")


@dataclass(frozen=True, slots=True)
class ResponseCounts:
    started: int
    completed: int
    screened_out: int
    in_progress: int


@dataclass(slots=True)
class SurveyResults:
    counts: ResponseCounts
    ties_in_share: bool
    questions: list[QuestionResult] = field(default_factory=list)
    side_bias: SideBiasResult | None = None
    ratings: list[RatingResult] = field(default_factory=list)
    # Mean of each participant's mean rating of a constitution's principles.
    constitution_ratings: dict[str, RatingResult] = field(default_factory=dict)

    @property
    def warning(self) -> str:
        """Shown above every number when too few participants completed the survey."""
        return stats.small_sample_warning(
            self.counts.completed, stats.MIN_N_RATINGS, "completed participants"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (the API and CSV export both use this)."""
        return {
            "counts": asdict(self.counts),
            "ties_in_share": self.ties_in_share,
            "alpha": ALPHA,
            "min_n": stats.MIN_N_RATINGS,
            "warning": self.warning,
            "questions": [
                {
                    "position": q.position,
                    "key": q.key,
                    "label": q.label,
                    "text": q.text,
                    "warning": q.warning,
                    "n_a": q.n_a,
                    "n_b": q.n_b,
                    "n_tie": q.n_tie,
                    "n_both_bad": q.n_both_bad,
                    "n_answers": q.n_answers,
                    "n_share": q.a.n,
                    "share_a": q.a.share,
                    "share_a_lo": q.a.lo,
                    "share_a_hi": q.a.hi,
                    "share_b": q.b.share,
                    "share_b_lo": q.b.lo,
                    "share_b_hi": q.b.hi,
                    "p_value": q.p_value,
                    "p_holm": q.p_holm,
                    "significant": q.significant,
                    "favours": q.favours,
                }
                for q in self.questions
            ],
            "side_bias": asdict(self.side_bias) if self.side_bias else None,
            "ratings": [{**asdict(r), "warning": r.warning} for r in self.ratings],
            "constitution_ratings": {
                k: {**asdict(v), "warning": v.warning} for k, v in self.constitution_ratings.items()
            },
        }


def question_result(
    *,
    position: int,
    key: str,
    text: str,
    n_a: int,
    n_b: int,
    n_tie: int = 0,
    n_both_bad: int = 0,
    ties_in_share: bool = False,
    p_holm: float | None = None,
) -> QuestionResult:
    """Summarise one question's counts (``p_holm`` defaults to the raw p-value)."""
    n = n_a + n_b + ((n_tie + n_both_bad) if ties_in_share else 0)
    a = ShareResult.of(n_a, n)
    b = ShareResult.of(n_b, n)
    return QuestionResult(
        position=position,
        key=key,
        text=text,
        n_a=n_a,
        n_b=n_b,
        n_tie=n_tie,
        n_both_bad=n_both_bad,
        a=a,
        b=b,
        p_holm=a.p_value if p_holm is None else p_holm,
    )


def _rating_result(side: str, position: int, text: str, values: list[float]) -> RatingResult:
    m = stats.bounded_mean_interval(values, *RATING_SCALE)
    return RatingResult(side, position, text, m.n, m.mean, m.sd, m.lo, m.hi, m.method)


def response_counts(*, survey: Survey) -> ResponseCounts:
    """Responses by status, in one query."""
    row = SurveyResponse.objects.filter(survey=survey).aggregate(
        started=Count("pk"),
        completed=Count("pk", filter=Q(status=ResponseStatus.COMPLETED)),
        screened_out=Count("pk", filter=Q(status=ResponseStatus.SCREENED_OUT)),
        in_progress=Count("pk", filter=Q(status=ResponseStatus.IN_PROGRESS)),
    )
    return ResponseCounts(**row)


def survey_results_compute(*, survey: Survey) -> SurveyResults:
    """All result numbers of ``survey`` as they stand now (live while it runs).

    A fixed number of queries (counts, answers grouped by question and choice, side
    counts, questions, and two for ratings) whatever the number of responses.
    """
    counts = response_counts(survey=survey)
    counted = Answer.objects.filter(
        response__survey=survey,
        response__status=ResponseStatus.COMPLETED,
        question__kind=QuestionKind.COMPARE,
    )
    by_question: dict[int, dict[str, int]] = defaultdict(dict)
    for row in counted.values("question_id", "choice").annotate(n=Count("pk")).order_by():
        by_question[row["question_id"]][row["choice"]] = row["n"]

    questions = list(
        survey.questions.filter(kind=QuestionKind.COMPARE)
        .order_by("position")
        .values("pk", "position", "key", "text")
    )
    raw = [
        question_result(
            position=q["position"],
            key=q["key"],
            text=q["text"],
            n_a=by_question[q["pk"]].get(SurveyChoice.A, 0),
            n_b=by_question[q["pk"]].get(SurveyChoice.B, 0),
            n_tie=by_question[q["pk"]].get(SurveyChoice.TIE, 0),
            n_both_bad=by_question[q["pk"]].get(SurveyChoice.BOTH_BAD, 0),
            ties_in_share=survey.ties_in_share,
        )
        for q in questions
    ]
    # The questions are a family: a researcher reports "preferred on 3 of 5 dimensions",
    # so the family-wise error rate is what must be controlled.
    adjusted = stats.holm([q.p_value for q in raw])
    results = SurveyResults(counts=counts, ties_in_share=survey.ties_in_share)
    results.questions = [
        question_result(
            position=q.position,
            key=q.key,
            text=q.text,
            n_a=q.n_a,
            n_b=q.n_b,
            n_tie=q.n_tie,
            n_both_bad=q.n_both_bad,
            ties_in_share=survey.ties_in_share,
            p_holm=p,
        )
        for q, p in zip(raw, adjusted, strict=True)
    ]

    sides = counted.aggregate(
        left=Count("pk", filter=Q(chose_left=True)),
        right=Count("pk", filter=Q(chose_left=False)),
    )
    bias = stats.side_bias_test(sides["left"], sides["right"])
    results.side_bias = SideBiasResult(
        left=sides["left"],
        right=sides["right"],
        share_left=bias.share,
        lo=bias.lo,
        hi=bias.hi,
        p_value=bias.p_value,
    )

    if survey.rate_principles:
        _add_ratings(results, survey)
    return results


def _add_ratings(results: SurveyResults, survey: Survey) -> None:
    items = list(
        ConstitutionPrinciple.objects.filter(
            constitution_id__in=[survey.constitution_a_id, survey.constitution_b_id]
        )
        .order_by("constitution_id", "position")
        .values("pk", "constitution_id", "position", "text")
    )
    side_of = {
        i["pk"]: "a" if i["constitution_id"] == survey.constitution_a_id else "b" for i in items
    }
    values: dict[int, list[float]] = defaultdict(list)
    per_participant: dict[tuple[str, int], list[float]] = defaultdict(list)
    for item_id, response_id, rating in PrincipleRating.objects.filter(
        response__survey=survey, response__status=ResponseStatus.COMPLETED
    ).values_list("item_id", "response_id", "rating"):
        values[item_id].append(rating)
        per_participant[(side_of[item_id], response_id)].append(rating)
    ordered = sorted(items, key=lambda i: (side_of[i["pk"]], i["position"]))
    results.ratings = [
        _rating_result(side_of[i["pk"]], i["position"], i["text"], values[i["pk"]]) for i in ordered
    ]
    # Ratings by one participant are not independent; averaging per participant first
    # makes the interval about participants, the unit that was sampled.
    for side, label in (("a", "A"), ("b", "B")):
        means = [sum(v) / len(v) for (s, _r), v in per_participant.items() if s == side]
        results.constitution_ratings[side] = _rating_result(
            side, 0, f"All principles of constitution {label}", means
        )
