"""Data and a scripted judge server for the evaluation tests.

The judge runs behind :class:`tests.fakes.FakeOpenAIServer`, and Django's settings point
the real client (``gcai.constitutions.llm.chat_model_for``: openai SDK, retries, database
response cache) at it, so the whole production path is exercised.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from annotations.models import Split, Study
from gcai.constitutions.models import Constitution, ConstitutionPrinciple, Principle
from tests.core.eval_fakes import as_responder, contains, rule_judge
from tests.factories import DatasetFactory, PairFactory
from tests.fakes import FakeOpenAIServer, Fault

PLEASE = "Select the response that says please."
POLITE = "Could you please hand it over?"
RUDE = "Hand it over now."


def llm_settings_for(server: FakeOpenAIServer) -> dict[str, str]:
    """The environment a worker process needs to use the fake server."""
    return {
        "GCAI_LLM_BACKEND": "openai",
        "GCAI_LLM_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test",
        "GCAI_LLM_MODEL": "fake-judge",
        "GCAI_EMBEDDINGS": "openai",
        "GCAI_EMBEDDING_MODEL": "fake-embedding",
        "GCAI_LLM_MAX_RETRIES": "1",
        "GCAI_LLM_TIMEOUT": "10",
    }


def serve_judge(settings) -> Iterator[FakeOpenAIServer]:
    """For a ``judge_server`` fixture: a fake OpenAI server answering as a judge that
    follows "say please", with Django's ``settings`` pointing the real client at it.
    Tests change ``server.responder`` for other judges."""
    with FakeOpenAIServer(responder=planted_rule_responder()) as server:
        for name, value in llm_settings_for(server).items():
            typed: Any = int(value) if name == "GCAI_LLM_MAX_RETRIES" else value
            if name == "GCAI_LLM_TIMEOUT":
                typed = float(value)
            setattr(settings, name, typed)
        yield server


def planted_rule_responder():
    return as_responder(rule_judge({PLEASE: contains("please")}))


def polite_pairs(study: Study, n: int = 12, *, split: str = Split.TEST, name: str = "polite"):
    """Humans always prefer the polite response; it sits on side a in half the pairs."""
    dataset = DatasetFactory(study=study, name=name)
    pairs = []
    for i in range(n):
        polite_first = i % 2 == 0
        pairs.append(
            PairFactory(
                dataset=dataset,
                external_id=f"{name}-{i}",
                prompt=f"Ask for item {i}.",
                response_a=f"{POLITE} ({i})" if polite_first else f"{RUDE} ({i})",
                response_b=f"{RUDE} ({i})" if polite_first else f"{POLITE} ({i})",
                source_preference="a" if polite_first else "b",
                split=split,
            )
        )
    return pairs


def make_constitution(
    study: Study, texts: Sequence[str], *, title: str = "Planted", method: str = "gcai"
) -> Constitution:
    constitution = Constitution.objects.create(study=study, title=title, method=method)
    for i, text in enumerate(texts, 1):
        principle = Principle.objects.create(study=study, text=text, origin="contextual", rank=i)
        ConstitutionPrinciple.objects.create(
            constitution=constitution, principle=principle, position=i, text=text
        )
    return constitution


def import_icai_csv(study: Study, path: Path, *, split: str = Split.TEST) -> int:
    """ICAI's processed CSV as pairs of ``study`` ("Instruction: ...\\n\\nOutput: ...")."""

    def parts(text: str) -> tuple[str, str]:
        instruction, _, output = text.partition("\n\nOutput:")
        return instruction.removeprefix("Instruction:").strip(), output.strip()

    dataset = DatasetFactory(study=study, name=path.stem)
    n = 0
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            prompt, response_a = parts(row["text_a"])
            _, response_b = parts(row["text_b"])
            preferred = {"text_a": "a", "text_b": "b"}.get(row["preferred_text"], "tie")
            PairFactory(
                dataset=dataset,
                external_id=str(i),
                prompt=prompt,
                response_a=response_a,
                response_b=response_b,
                source_preference=preferred,
                split=split,
            )
            n += 1
    return n


def failed_in_batch_three(
    study: Study, judge_server: FakeOpenAIServer, settings
) -> tuple[Any, dict]:
    """An evaluation of 12 polite pairs in batches of 4 whose third batch failed (the
    server refused item 9, with no retries): batches 0 and 1 are stored. Set
    ``outage["on"] = False`` to let the server answer again."""
    from gcai.constitutions.evaluations import evaluation_create, evaluation_run_inline

    settings.GCAI_LLM_MAX_RETRIES = 0
    polite_pairs(study, 12)
    planted = judge_server.responder
    outage = {"on": True}

    def responder(body):
        text = "\n".join(str(m["content"]) for m in body["messages"])
        if outage["on"] and "Ask for item 9." in text:
            return Fault.server_error(503)
        return planted(body)

    judge_server.responder = responder
    evaluation = evaluation_create(
        study=study,
        constitution=make_constitution(study, [PLEASE]),
        batch_size=4,
        principle_analysis=False,
    )
    assert evaluation_run_inline(evaluation=evaluation) == "failed"
    return evaluation, outage
