"""A run's overall progress: which stage of how many, and each stage's state.

The run page shows "Stage 3 of 10" and a state per stage; its status endpoint sends the
same so the page updates while the run works. Computed from the stage list
(:func:`selectors.run_stages_list`, one query) and the run row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gcai.constitutions.models import PipelineRun
from gcai.constitutions.selectors import StageInfo
from gcai.jobs.models import JobStatus

# Stage states: stored output (done), being worked on (running), stopped there by a
# failure or a cancel (stopped), not reached yet (waiting).
DONE, RUNNING, STOPPED, WAITING = "done", "running", "stopped", "waiting"
STATE_LABELS = {DONE: "stored", RUNNING: "running", STOPPED: "stopped here", WAITING: "not yet"}


def run_overall(*, run: PipelineRun, stages: Sequence[StageInfo]) -> dict[str, Any]:
    """``{"index": 3, "count": 10, "text": "Stage 3 of 10", "stages": [...]}``.

    ``index`` is the 1-based position of the stage being worked on (or where the run
    stopped); 0 while queued before any stage, ``count`` when every stage is done.
    """
    names = [s.name for s in stages]
    count = len(names)
    if run.status == JobStatus.SUCCEEDED:
        index = count
    elif run.stage in names:
        index = names.index(run.stage) + 1
    else:
        # Queued, or a stage name this code no longer knows: the first stage not stored.
        index = next((i for i, s in enumerate(stages, start=1) if not s.stored), 0)
        if run.status == JobStatus.QUEUED and not any(s.stored for s in stages):
            index = 0
    rows = []
    for i, s in enumerate(stages, start=1):
        if s.stored:
            state = DONE
        elif i == index and run.is_active:
            state = RUNNING
        elif i == index and run.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            state = STOPPED
        else:
            state = WAITING
        rows.append(
            {
                "name": s.name,
                "title": s.title,
                "state": state,
                "state_label": STATE_LABELS[state],
                "batches_stored": s.batches_stored,
            }
        )
    return {"index": index, "count": count, "text": _text(run, index, count), "stages": rows}


def _text(run: PipelineRun, index: int, count: int) -> str:
    if run.status == JobStatus.SUCCEEDED:
        return f"All {count} stages done"
    if index == 0:
        return f"Waiting to start ({count} stages)"
    if run.is_active:
        return f"Stage {index} of {count}"
    return f"Stopped at stage {index} of {count}"
