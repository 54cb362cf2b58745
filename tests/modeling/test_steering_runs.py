"""Steering evaluations on the job engine recover a planted effect, with the fake server."""

from __future__ import annotations

import pytest

from gcai.modeling import services
from gcai.modeling.models import SteeringArtifact, SteeringRun
from tests.modeling.support import OTHER_RULE, RULE, make_constitution, steering_responder

pytestmark = pytest.mark.django_db

PROMPTS = [f"Question {i}{' skip' if i % 5 == 4 else ''}?" for i in range(20)]


def _create(study, server, constitution, **kw) -> SteeringRun:
    return services.steering_create(
        study=study,
        constitution=constitution,
        prompts=PROMPTS,
        target={"backend": "openai", "base_url": server.base_url, "model": "target"},
        batch_size=7,
        **kw,
    )


def _comparison(run, name):
    return next(c for c in run.results["comparisons"] if c["name"] == name)


def test_constitution_in_the_prompt_wins_and_length_neutral_rule_is_not_adjusted(
    study, fake_llm, drive
):
    fake_llm.responder = steering_responder()
    run = drive(_create(study, fake_llm, make_constitution(study, [RULE])))
    assert run.status == "succeeded", run.error
    c = _comparison(run, "a_vs_none")
    # 16 prompts follow the rule (won in both orders), 4 "skip" prompts tie.
    assert c["win_rate"]["value"] == pytest.approx(0.9)
    assert c["win_rate"]["lo"] > 0.65
    assert (c["wins"], c["ties"], c["losses"]) == (32, 8, 0)
    assert c["median_length_diff"] == 0
    assert c["lc_win_rate"] == pytest.approx(0.9, abs=1e-3)
    # 20 prompts x 2 variants, then 20 comparisons x 2 orders; on the 4 "skip" prompts
    # both answers are identical, so the two orders are one question, asked once.
    assert run.llm_calls == 40 + 40 - 4
    assert SteeringArtifact.objects.filter(run=run, stage="generate", batch__gte=0).count() == 6


def test_length_controlled_rate_adjusts_when_the_rule_also_lengthens(study, fake_llm, drive):
    fake_llm.responder = steering_responder(lengthen=True)
    run = drive(_create(study, fake_llm, make_constitution(study, [RULE])))
    c = _comparison(run, "a_vs_none")
    assert c["win_rate"]["value"] == pytest.approx(0.9)
    assert c["median_length_diff"] > 300
    # Every win came with a much longer answer: at equal length the rule buys little.
    assert c["lc_win_rate"] < 0.6
    assert c["lc_slope"] > 0


def test_second_constitution_is_compared_with_the_first_and_with_none(study, fake_llm, drive):
    fake_llm.responder = steering_responder()
    gcai = make_constitution(study, [RULE], title="GCAI")
    icai = make_constitution(study, [OTHER_RULE], title="ICAI", method="icai")
    run = drive(_create(study, fake_llm, gcai, constitution_b=icai))
    assert run.status == "succeeded", run.error
    names = [c["name"] for c in run.results["comparisons"]]
    assert names == ["a_vs_none", "b_vs_none", "a_vs_b"]
    assert _comparison(run, "b_vs_none")["win_rate"]["value"] == pytest.approx(0.5)
    assert _comparison(run, "a_vs_b")["win_rate"]["value"] == pytest.approx(0.9)


def test_a_repeated_run_is_answered_from_the_cache(study, fake_llm, drive):
    fake_llm.responder = steering_responder()
    constitution = make_constitution(study, [RULE])
    drive(_create(study, fake_llm, constitution))
    calls = fake_llm.chat_calls
    again = drive(_create(study, fake_llm, constitution))
    assert again.status == "succeeded"
    assert fake_llm.chat_calls == calls
    assert again.llm_calls == 0
    assert again.llm_cached_calls == 76


def test_a_failed_run_resumes_without_repeating_answered_calls(
    study, fake_llm, drive, django_capture_on_commit_callbacks
):
    counter: dict[str, int] = {}
    fake_llm.responder = steering_responder(counter=counter)
    run = _create(study, fake_llm, make_constitution(study, [RULE]))

    def failing(req):
        if req["model"] == "fake-judge":
            raise RuntimeError("judge down")
        return steering_responder(counter=counter)(req)

    fake_llm.responder = failing
    run = drive(run)
    assert run.status == "failed"
    assert "judge" in run.error
    target_calls = counter["target"]
    assert target_calls == 40
    fake_llm.responder = steering_responder(counter=counter)
    with django_capture_on_commit_callbacks(execute=True):
        services.steering_resume(run=run)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert counter["target"] == target_calls  # generation was stored: not asked again
    assert _comparison(run, "a_vs_none")["win_rate"]["value"] == pytest.approx(0.9)


def test_bad_settings_are_refused_naming_the_field(study, fake_llm):
    constitution = make_constitution(study, [RULE])
    with pytest.raises(services.SteeringError, match="target_model"):
        services.steering_create(
            study=study, constitution=constitution, prompts=["q"], target={"backend": "openai"}
        )
    with pytest.raises(services.SteeringError, match="prompts"):
        services.steering_create(
            study=study, constitution=constitution, prompts=[" "], target={"backend": "local"}
        )
    with pytest.raises(services.SteeringError, match="api_key_env"):
        services.steering_create(
            study=study,
            constitution=constitution,
            prompts=["q"],
            target={"model": "m", "api_key_env": "SECRET_KEY"},
        )
    assert not SteeringRun.objects.exists()


def test_the_platform_key_only_goes_to_the_platform_endpoint(settings, monkeypatch):
    from gcai.modeling.steering_jobs import target_settings

    settings.OPENAI_API_KEY = "sk-platform"
    settings.GCAI_LLM_BASE_URL = "http://127.0.0.1:9/v1"
    mine = target_settings({"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert mine.api_key == "sk-platform"
    elsewhere = target_settings({"base_url": "http://127.0.0.1:7/v1", "model": "m"})
    assert elsewhere.api_key == "unused"
    monkeypatch.setenv("TARGET_API_KEY", "sk-target")
    named = target_settings(
        {"base_url": "http://127.0.0.1:7/v1", "model": "m", "api_key_env": "TARGET_API_KEY"}
    )
    assert named.api_key == "sk-target"
