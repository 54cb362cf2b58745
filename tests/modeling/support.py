"""Constitutions, pairs and scripted models for the export and steering tests."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from annotations.models import PreferencePair, Split, Study
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Principle
from gcai.constitutions.services import constitution_publish
from tests.factories import DatasetFactory, PairFactory
from tests.fakes import last_user_message

RULE = "Select the response that ends with the word SAFE."
OTHER_RULE = "Select the response that mentions the weather."
HEADER_MARK = "Follow these principles when you respond:"


def make_constitution(
    study: Study,
    texts: Sequence[str],
    *,
    title: str = "Planted",
    method: str = "gcai",
    evidence: Sequence[Sequence[PreferencePair]] | None = None,
    publish: bool = True,
) -> Constitution:
    """A constitution of ``texts``; ``evidence[i]`` are the pairs principle i+1 rests on."""
    constitution = Constitution.objects.create(study=study, title=title, method=method)
    support = list(evidence or [])
    for i, text in enumerate(texts, 1):
        principle = Principle.objects.create(study=study, text=text, origin="contextual", rank=i)
        pairs = support[i - 1] if i <= len(support) else []
        if not pairs:
            pairs = [PairFactory(dataset=DatasetFactory(study=study, name=f"evidence-{title}-{i}"))]
        principle.supporting_pairs.set(pairs)
        ConstitutionPrinciple.objects.create(
            constitution=constitution, principle=principle, position=i, text=text
        )
    if publish:
        # Planted rules are not always worded "Select the response that ...": these tests
        # are about exports and steering, not the quality gate, so publish past it.
        constitution = constitution_publish(constitution=constitution, override=True)
    return constitution


def labelled_pairs(study: Study, *, name: str = "prefs") -> list[PreferencePair]:
    """Train and test pairs with a, b and tie labels (and one unlabelled pair)."""
    dataset = DatasetFactory(study=study, name=name)
    spec = [
        ("train", "a"), ("train", "b"), ("train", "tie"), ("train", "a"),
        ("test", "b"), ("test", "a"), ("test", "tie"), ("unassigned", "none"),
    ]  # fmt: skip
    return [
        PairFactory(
            dataset=dataset,
            external_id=f"{name}-{i}",
            prompt=f"Prompt {i} of {name}?",
            response_a=f"Response A{i}",
            response_b=f"Response B{i}",
            source_preference=label,
            split=Split(split),
        )
        for i, (split, label) in enumerate(spec)
    ]


# --------------------------------------------------------------------------- scripted models

_R1 = re.compile(r"<response_1>\n(.*?)\n</response_1>", re.S)
_R2 = re.compile(r"<response_2>\n(.*?)\n</response_2>", re.S)


def steering_responder(*, lengthen: bool = False, counter: dict[str, int] | None = None):
    """A target model that ends with SAFE only when the constitution is in its prompt
    (and the prompt does not say "skip"), and a judge that prefers the SAFE ending.

    ``lengthen``: the rule-following answer also grows by a long paragraph, so the
    constitution's wins coincide with longer answers.
    """

    def answer(req: dict[str, Any]) -> Any:
        if counter is not None:
            counter[req["model"]] = counter.get(req["model"], 0) + 1
        if req["model"] == "fake-judge":
            user = last_user_message(req)
            r1 = _R1.search(user).group(1)
            r2 = _R2.search(user).group(1)
            s1, s2 = r1.endswith("SAFE"), r2.endswith("SAFE")
            preferred = "tie" if s1 == s2 else ("1" if s1 else "2")
            return json.dumps({"preferred": preferred})
        text = " ".join(str(m.get("content", "")) for m in req["messages"])
        prompt = last_user_message(req).split("\n\n")[-1]
        follows = HEADER_MARK in text and "SAFE" in text and "skip" not in prompt
        if not follows:
            return f"Answer to {prompt} OKAY"
        padding = " Stay careful, check twice and ask for help." * 8 if lengthen else ""
        return f"Answer to {prompt}{padding} SAFE"

    return answer
