"""The default orthogonal constitution is length-neutral: a judge that follows it to the
letter lands at chance on data where the longer response always wins."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from gcai.core.evaluate import EvalConfig, evaluate, orthogonal_constitution
from gcai.core.types import Pair, Preference
from tests.core.eval_fakes import ScriptedChatModel, rule_judge

Rule = Callable[[str], bool]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _compare(key: Callable[[str], object], prefer_smaller: bool):
    """A principle that compares one property of the two responses (None: a tie)."""

    def decide(a: str, b: str) -> str | None:
        ka, kb = key(a), key(b)
        if ka == kb:
            return None
        return "A" if (ka < kb) == prefer_smaller else "B"  # type: ignore[operator]

    return decide


# What each default orthogonal principle literally says, as code.
LITERAL: dict[str, Callable[[str, str], str | None]] = {
    "Select the response whose first word comes earlier in alphabetical order.": _compare(
        lambda t: _words(t)[0], True
    ),
    "Select the response whose last word comes later in alphabetical order.": _compare(
        lambda t: _words(t)[-1], False
    ),
    "Select the response whose first word begins with a vowel.": _compare(
        lambda t: _words(t)[0][0] not in "aeiou", True
    ),
    "Select the response whose first word has fewer letters.": _compare(
        lambda t: len(_words(t)[0]), True
    ),
    "Select the response whose last word has more letters.": _compare(
        lambda t: len(_words(t)[-1]), False
    ),
    "Select the response that ends with a character other than a full stop.": _compare(
        lambda t: t.rstrip().endswith("."), True
    ),
    # A count-based principle of the kind the default list used to hold.
    'Select the response that uses more words starting with the letter "s".': _compare(
        lambda t: sum(w.startswith("s") for w in _words(t)), False
    ),
}

_VOCABULARY = [
    "sun",
    "stone",
    "apple",
    "river",
    "quiet",
    "orange",
    "silver",
    "table",
    "under",
    "ever",
    "simple",
    "music",
    "idea",
    "open",
    "story",
    "garden",
    "small",
    "bright",
    "east",
    "north",
    "answer",
    "yellow",
    "salt",
    "slow",
    "echo",
    "window",
]


def _length_wins_pairs(n: int = 400) -> list[Pair]:
    rng = random.Random(7)
    pairs = []
    for i in range(n):
        short = " ".join(rng.choices(_VOCABULARY, k=rng.randint(4, 8))) + rng.choice(".!?")
        long = " ".join(rng.choices(_VOCABULARY, k=rng.randint(16, 30))) + rng.choice(".!?")
        a_long = rng.random() < 0.5
        pairs.append(
            Pair(
                f"p{i:03d}",
                "Say something.",
                long if a_long else short,
                short if a_long else long,
                Preference.A if a_long else Preference.B,
            )
        )
    return pairs


def _literal_judge(principles: list[str]):
    rules = {p: LITERAL[p] for p in principles}

    def answer(view):
        for principle in view.principles or []:
            side = rules[principle](view.response_a, view.response_b)
            if side:
                return {"choice": side}
        return {"choice": "A"}

    return answer


def _headline(principles: list[str], pairs: list[Pair]) -> float:
    model = ScriptedChatModel(_literal_judge(principles))
    config = EvalConfig(principle_analysis=False)
    result = evaluate(model, principles, pairs, config)
    value = result.metrics.accuracy_per_order.value
    assert value is not None
    return value


def test_default_orthogonal_constitution_is_at_chance_when_length_predicts_preference():
    pairs = _length_wins_pairs()
    default = [p.text for p in orthogonal_constitution().principles]
    assert set(default) <= set(LITERAL)
    assert 0.4 <= _headline(default, pairs) <= 0.6
    # A count-based principle rewards length: far above chance on the same data.
    counting = ['Select the response that uses more words starting with the letter "s".']
    assert _headline(counting, pairs) > 0.75


def test_a_position_biased_judge_scores_exactly_chance_on_the_headline():
    pairs = _length_wins_pairs(50)
    model = ScriptedChatModel(rule_judge({}))  # no rule applies: forced "A" in both orders
    result = evaluate(model, orthogonal_constitution(), pairs, EvalConfig(principle_analysis=False))
    assert result.metrics.accuracy_per_order.value == 0.5
    assert result.metrics.accuracy.value == 0.0  # strict agreement punishes the flip
