"""A scripted, rule-following LLM behind the fake OpenAI-compatible server.

It answers every request the pipelines and the evaluation make as one consistent judge
that knows a few planted rules (:class:`tests.core.scripted.Judge`): it proposes,
votes on, summarises and compares principles by those rules, and as an evaluation judge
it follows the constitution it is shown. It has no taste of its own: without a
constitution, or when no principle of the constitution decides, it is forced to choose
and picks the response shown first (or answers "none" when abstaining is allowed). So
the no-constitution and orthogonal baselines land at chance on the published measure.

Run a command against it (no network, no model)::

    python -m tests.fakes.rule_judge -- python manage.py reproduce_table1 FILE

starts the server, points the app at it (``GCAI_LLM_BASE_URL`` and friends) and runs
the command. ``--rules`` picks the planted rules (default: ICAI's synthetic data).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from tests.constitutions.judge_server import judge_responder
from tests.core.scripted import ALIGNED_RULES, ORTHOGONAL_RULES, Judge, Rule, tag
from tests.fakes.openai_server import FakeOpenAIServer

#: The principles ICAI's synthetic data were generated from.
ICAI_SYNTHETIC_RULES: tuple[Rule, ...] = (*ALIGNED_RULES, *ORTHOGONAL_RULES)


def _abstaining_allowed(request: dict[str, Any]) -> bool:
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if schema:
        return "none" in str(schema.get("properties", {}).get("choice", {}))
    return '"none"' in str(request.get("messages"))


def evaluation_answer(judge: Judge, request: dict[str, Any]) -> Any:
    """A judgement of one pair: the first principle of the constitution that decides."""
    messages = request["messages"]
    user = next(str(m.get("content", "")) for m in messages if m["role"] == "user")
    system = "\n".join(str(m.get("content", "")) for m in messages if m["role"] == "system")
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "applicable" in str(schema) or '"applicable"' in system:
        return {"applicable": [], "decisive": 0}
    a, b = tag(user, "response_a") or "", tag(user, "response_b") or ""
    constitution = tag(system + "\n" + user, "constitution")
    if constitution is not None:
        for line in constitution.splitlines():
            rule = judge.rule_for(line)
            verdict = rule.decide(a, b) if rule is not None else None
            if verdict in ("A", "B"):
                return {"choice": verdict}
    return {"choice": "none" if _abstaining_allowed(request) else "A"}


def rule_judge_responder(rules: Sequence[Rule] = ICAI_SYNTHETIC_RULES, **judge_kwargs: Any):
    """A fake-server responder for pipelines and evaluations alike."""
    judge = Judge(rules, **judge_kwargs)

    def evaluation(purpose: str, request: dict[str, Any]) -> Any:
        return evaluation_answer(judge, request) if purpose == "evaluate.judge" else None

    return judge_responder(judge, tamper=evaluation)


def app_environment(server: FakeOpenAIServer) -> dict[str, str]:
    """The settings that point the app's chat model and embeddings at ``server``."""
    return {
        "GCAI_LLM_BACKEND": "openai",
        "GCAI_LLM_BASE_URL": server.base_url,
        "GCAI_LLM_MODEL": "fake-rule-judge",
        "OPENAI_API_KEY": "unused",
        "GCAI_EMBEDDINGS": "openai",
        "GCAI_EMBEDDING_MODEL": "fake-embed",
        "GCAI_LLM_MAX_RETRIES": "0",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] or [sys.executable, "manage.py", "help"]
    with FakeOpenAIServer(responder=rule_judge_responder()) as server:
        env = {**os.environ, **app_environment(server)}
        print(f"rule-following judge at {server.base_url}", file=sys.stderr)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
