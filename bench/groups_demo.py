"""Per-group constitutions on the demo's quick slice, split by a simulated attribute.

Imports the demo study (pairs and statements), adds two groups of simulated annotators
(gcai.demo.groups: "brief" pick the shorter response, "thorough" the longer), and runs
``manage.py build_groups`` against the fake OpenAI-compatible server with a judge that
follows whichever length rule it is asked about. Prints the report, build time and
LLM call counts. Needs a migrated database (DATABASE_URL); touches only the demo study.

    .venv/bin/python bench/groups_demo.py [--eval-limit 10] [--out report.json]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gcai.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from gcai.demo.build import demo_data, demo_study  # noqa: E402
from gcai.demo.groups import ATTRIBUTE, demo_groups  # noqa: E402
from tests.core.scripted import Judge  # noqa: E402
from tests.fakes import FakeOpenAIServer  # noqa: E402
from tests.groups.support import CONCISE, DETAILED, group_responder  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-limit", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    say = lambda msg: print(msg)  # noqa: E731
    study = demo_study()
    _full, quick = demo_data(study=study, say=say)
    added = demo_groups(study=study, dataset=quick)
    say(f"Simulated annotations added: {added}")
    judge = Judge((CONCISE, DETAILED), noise=("Select the response that is written in English.",))
    with FakeOpenAIServer(responder=group_responder(judge)) as server:
        settings.GCAI_LLM_BACKEND = "openai"
        settings.GCAI_LLM_BASE_URL = server.base_url
        settings.GCAI_LLM_MODEL = "fake-judge"
        settings.OPENAI_API_KEY = "bench-key"
        settings.GCAI_EMBEDDINGS = "openai"
        settings.GCAI_EMBEDDING_MODEL = "fake-embed"
        started = time.perf_counter()
        options = ["--attribute", ATTRIBUTE, "--dataset", str(quick.pk)]
        if args.eval_limit:
            options += ["--eval-limit", str(args.eval_limit)]
        if args.out:
            options += ["--out", args.out]
        call_command("build_groups", str(study.pk), *options)
        wall = time.perf_counter() - started
        print(f"\nWall time {wall:.1f} s; fake server answered {server.chat_calls} chat calls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
