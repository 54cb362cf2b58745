"""Runs, stage artifacts and constitutions built directly in the database.

Used by the access tests (``make_constitution_objects`` from tests/owned_objects.py and
the ``entry_points.register`` entries below) and by the page/API tests. Artifacts are
the real ``to_dict()`` of the gcai.core dataclasses, so the pages are tested against the
shapes the engine stores.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from annotations.models import Role
from gcai.constitutions.models import (
    Constitution,
    ConstitutionPrinciple,
    Method,
    PipelineRun,
    Principle,
    StageArtifact,
)
from gcai.core.cluster import (
    Candidate,
    ClusterMember,
    ClusterOutput,
    Evidence,
    Proposal,
    Proposals,
    RepresentativeOutput,
    TextCluster,
)
from gcai.core.grounded import (
    DuplicateCheck,
    GcaiConfig,
    MergeOutput,
    rank_contextual,
    rank_general,
)
from gcai.core.icai import IcaiConfig, filter_principles
from gcai.core.types import Origin, Preference
from gcai.core.types import Principle as CorePrinciple
from gcai.core.voting import PairVotes, VoteCall, VoteOutput
from gcai.jobs.models import JobStatus
from tests import entry_points
from tests.factories import (
    AnnotationFactory,
    DatasetFactory,
    MembershipFactory,
    PairFactory,
    ParticipantFactory,
    StatementFactory,
)

EVIL = '<script>alert("pwned")</script>'


# --------------------------------------------------------------------------- study input


def make_study_input(study, *, n_pairs: int = 4) -> dict[str, Any]:
    """Training pairs, an annotator with reasons, and participants with statements."""
    dataset = DatasetFactory(study=study, name=f"runs-data-{study.pk}")
    pairs = [
        PairFactory(dataset=dataset, source_preference="a" if i % 3 else "b")
        for i in range(n_pairs)
    ]
    PairFactory(dataset=dataset, split="test")
    # No password: hashing one costs about a second, and this runs for every access test.
    annotator = get_user_model().objects.create(
        username=f"annotator-{study.pk}", email="annotator@example.org"
    )
    membership = MembershipFactory(user=annotator, study=study, role=Role.ANNOTATOR)
    annotations = [
        AnnotationFactory(
            pair=pair, annotator=annotator, preferred="a", reason=f"Reason {i}: it is honest."
        )
        for i, pair in enumerate(pairs)
    ]
    participant = ParticipantFactory(study=study)
    statements = [
        StatementFactory(study=study, participant=participant, text="AI should be honest."),
        StatementFactory(study=study, participant=participant, text="I like turtles."),
    ]
    return {
        "dataset": dataset,
        "pairs": pairs,
        "annotator": annotator,
        "annotator_pseudonym": membership.pseudonym,
        "annotations": annotations,
        "participant": participant,
        "statements": statements,
    }


def _artifact(run: PipelineRun, stage: str, data: dict[str, Any], batch: int = -1) -> None:
    StageArtifact.objects.create(run=run, stage=stage, batch=batch, data=data)


def _link(principle: Principle, evidence: Evidence) -> None:
    principle.supporting_pairs.set([int(x) for x in evidence.pair_ids if x.isdigit()])
    principle.supporting_annotations.set(
        [int(x.split(":")[1]) for x in evidence.judgement_ids if x.startswith("ann:")]
    )
    principle.supporting_statements.set([int(x) for x in evidence.statement_ids])


def _finish(run: PipelineRun, principles: list[CorePrinciple]) -> Constitution:
    """Principles with evidence and a draft constitution, as the engine's finish step."""
    constitution = Constitution.objects.create(
        study=run.study,
        run=run,
        method=run.method,
        title=f"{Method(run.method).label} constitution (run {run.pk})",
    )
    for i, p in enumerate(principles, 1):
        row = Principle.objects.create(
            run=run,
            study=run.study,
            text=p.text,
            origin=str(p.origin),
            stats={**p.stats, "participants": list(p.participants)},
            rank=i,
        )
        _link(row, Evidence(p.pair_ids, p.judgement_ids, p.statement_ids, p.participants))
        ConstitutionPrinciple.objects.create(
            constitution=constitution, principle=row, position=i, text=row.text
        )
    return constitution


def _run(study, method: str, **fields: Any) -> PipelineRun:
    defaults = {
        "status": JobStatus.SUCCEEDED,
        "stage": "done",
        "progress_done": 1,
        "progress_total": 1,
        "llm_calls": 42,
        "llm_cached_calls": 7,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cost_usd": "0.012300",
        "llm_model": "fake-model",
    }
    defaults.update(fields)
    config = {
        "seed": 0,
        "method_config": {},
        "batch_size": 25,
        "max_training_pairs": None,
        "dataset_ids": [],
        "publish": False,
        "_joined": ["generate"],
    }
    return PipelineRun.objects.create(study=study, method=method, config=config, **defaults)


# --------------------------------------------------------------------------- ICAI


def build_icai_run(
    study,
    data: dict[str, Any],
    *,
    text: str = "Select the response that is honest.",
    method: str = Method.ICAI,
    **fields,
) -> PipelineRun:
    """A finished ICAI run with every stage stored and a draft constitution.

    ``method`` may name an improved variant; its stages are then listed by the pages
    (improved 2 starts with a triplet stage, left unstored here).
    """
    run = _run(study, method, **fields)
    pairs = data["pairs"]
    run.training_pairs.set(pairs)
    ids = [str(p.pk) for p in pairs]
    proposals = Proposals(
        [
            Proposal(
                ids[0], Evidence(pair_ids=[ids[0]]), [text, "Select the response that is brief."]
            ),
            Proposal(ids[1], Evidence(pair_ids=[ids[1]]), [text]),
            Proposal(
                ids[2], Evidence(pair_ids=[ids[2]]), [], "skipped", "label tie: only decisive"
            ),
            Proposal(ids[3], Evidence(pair_ids=[ids[3]]), [], "error", "LLMOutputError: bad JSON"),
        ]
    )
    _artifact(run, "generate", proposals.to_dict(), batch=0)
    _artifact(run, "generate", proposals.to_dict())
    clusters = ClusterOutput(
        [
            TextCluster(
                0,
                [
                    ClusterMember(text, ids[0], Evidence(pair_ids=[ids[0]]), 0.99),
                    ClusterMember(text, ids[1], Evidence(pair_ids=[ids[1]]), 0.99),
                ],
            ),
            TextCluster(
                1,
                [
                    ClusterMember(
                        "Select the response that is brief.",
                        ids[0],
                        Evidence(pair_ids=[ids[0]]),
                        1.0,
                    )
                ],
            ),
        ],
        n_texts=3,
        n_clusters_requested=10,
        embedder="fake-embed",
    )
    _artifact(run, "cluster", clusters.to_dict())
    reps = RepresentativeOutput(
        [
            Candidate("c0", text, 0, clusters.clusters[0].evidence, 2, "random"),
            Candidate(
                "c1",
                "Select the response that is brief.",
                1,
                clusters.clusters[1].evidence,
                1,
                "random",
            ),
        ]
    )
    _artifact(run, "representatives", reps.to_dict())
    calls, pair_votes = [], []
    for i, pid in enumerate(ids):
        label = Preference.A if pairs[i].source_preference == "a" else Preference.B
        good = "a" if label is Preference.A else "b"
        bad = "b" if good == "a" else "a"
        answers = {"c0": good, "c1": bad if i % 2 else "neither"}
        calls.append(VoteCall(pid, 0, 0, bool(i % 2), ["c0", "c1"], [good, answers["c1"]]))
        pair_votes.append(PairVotes(pid, label, answers))
    calls.append(VoteCall(ids[0], 1, 0, False, ["c0", "c1"], ["invalid", "invalid"], "bad JSON"))
    votes = VoteOutput(calls, pair_votes)
    _artifact(run, "vote", votes.to_dict())
    filtered = filter_principles(reps, votes, embedder=None, config=IcaiConfig())
    _artifact(run, "filter", filtered.to_dict())
    _finish(run, list(filtered.principles))
    return run


# --------------------------------------------------------------------------- GCAI


def build_gcai_run(study, data: dict[str, Any], *, reason_text: str = "", **fields) -> PipelineRun:
    """A finished GCAI run: both streams, the merge, principles and a draft constitution."""
    run = _run(study, Method.GCAI, **fields)
    pairs, annotations, statements = data["pairs"], data["annotations"], data["statements"]
    run.training_pairs.set(pairs)
    who = data["annotator_pseudonym"]
    participant = data["participant"].pseudonym
    ctx_text = "Select the response that is honest about uncertainty."
    ev = [
        Evidence(pair_ids=[str(a.pair_id)], judgement_ids=[f"ann:{a.pk}"], participants=[who])
        for a in annotations
    ]
    ctx_props = Proposals(
        [Proposal(f"ann:{a.pk}", ev[i], [ctx_text]) for i, a in enumerate(annotations[:3])]
        + [Proposal(f"ann:{annotations[3].pk}", ev[3], [], "skipped", "no reason given")]
    )
    _artifact(run, "contextual_generate", ctx_props.to_dict())
    members = [
        ClusterMember(ctx_text, f"ann:{a.pk}", ev[i], 0.97) for i, a in enumerate(annotations[:3])
    ]
    ctx_clusters = ClusterOutput([TextCluster(0, members)], 3, 10, "fake-embed")
    _artifact(run, "contextual_cluster", ctx_clusters.to_dict())
    ctx_reps = RepresentativeOutput(
        [Candidate("ctx0", ctx_text, 0, ctx_clusters.clusters[0].evidence, 3, "summary")]
    )
    _artifact(run, "contextual_representatives", ctx_reps.to_dict())
    pair_votes = [
        PairVotes(str(p.pk), Preference(p.source_preference), {"ctx0": p.source_preference})
        for p in pairs
    ]
    votes = VoteOutput([], pair_votes)
    _artifact(run, "contextual_vote", votes.to_dict())
    config = GcaiConfig()
    ctx_rank = rank_contextual(ctx_reps, votes, config)
    _artifact(run, "contextual_rank", ctx_rank.to_dict())
    s_ok, s_none = statements
    gen_text = "AI should be honest."
    gen_ev = Evidence(statement_ids=[str(s_ok.pk)], participants=[participant])
    gen_props = Proposals(
        [
            Proposal(str(s_ok.pk), gen_ev, [gen_text], "ok", "states honesty"),
            Proposal(
                str(s_none.pk),
                Evidence(statement_ids=[str(s_none.pk)], participants=[participant]),
                [],
                "no_values",
                "off-topic: about turtles",
            ),
        ]
    )
    _artifact(run, "general_generate", gen_props.to_dict())
    gen_clusters = ClusterOutput(
        [TextCluster(0, [ClusterMember(gen_text, str(s_ok.pk), gen_ev, 1.0)])], 1, 10, "fake-embed"
    )
    _artifact(run, "general_cluster", gen_clusters.to_dict())
    gen_reps = RepresentativeOutput([Candidate("gen0", gen_text, 0, gen_ev, 1, "single")])
    _artifact(run, "general_representatives", gen_reps.to_dict())
    gen_rank = rank_general(gen_reps, config)
    _artifact(run, "general_rank", gen_rank.to_dict())
    union = Evidence.union([ctx_reps.candidates[0].evidence, gen_ev])
    merged_text = ctx_text + (f" {reason_text}" if reason_text else "")
    principle = CorePrinciple(
        merged_text,
        Origin.BOTH,
        union.pair_ids,
        union.judgement_ids,
        union.statement_ids,
        union.participants,
        {
            **ctx_rank.ranked[0].stats,
            "support": 1,
            "general_candidate_id": "gen0",
            "general_text": gen_text,
            "rank": 1,
        },
    )
    merge = MergeOutput(
        [principle],
        [DuplicateCheck("ctx0", "gen0", 0.91, True, True)],
        {},
    )
    _artifact(run, "merge", merge.to_dict())
    _finish(run, [principle])
    return run


# --------------------------------------------------------------------------- access tests


def make_constitution_objects(study, researcher) -> dict[str, Any]:
    """A small finished ICAI run with a stored stage and its draft constitution."""
    data = make_study_input(study, n_pairs=4)
    run = build_icai_run(study, data)
    return {"run": run, "run_constitution": run.constitutions.get(), "run_stage": "generate"}


def _run_kwargs(owned: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": owned["study"].pk, "run_id": owned["run"].pk}


def _stage_kwargs(owned: dict[str, Any]) -> dict[str, Any]:
    return {**_run_kwargs(owned), "stage": owned["run_stage"]}


def _constitution_kwargs(owned: dict[str, Any]) -> dict[str, Any]:
    return {"study_id": owned["study"].pk, "constitution_id": owned["run_constitution"].pk}


for _name in (
    "run_detail",
    "run_cancel",
    "run_resume",
    "run_export",
    "api_run_detail",
    "api_run_status",
    "api_run_cancel",
    "api_run_resume",
    "api_run_artifacts",
    "api_run_consensus",
):
    entry_points.register(_name)(_run_kwargs)


def _pair_kwargs(owned: dict[str, Any]) -> dict[str, Any]:
    pair = owned["run"].training_pairs.order_by("pk").first()
    return {"study_id": owned["study"].pk, "pair_id": pair.pk}


entry_points.register("pair_detail")(_pair_kwargs)
for _name in ("run_stage", "run_stage_export", "api_run_artifact_detail"):
    entry_points.register(_name)(_stage_kwargs)
for _name in (
    "constitution_detail",
    "constitution_edit",
    "constitution_publish",
    "api_constitution_detail",
    "api_constitution_consensus",
    "api_constitution_new_version",
    "api_constitution_publish",
):
    entry_points.register(_name)(_constitution_kwargs)
