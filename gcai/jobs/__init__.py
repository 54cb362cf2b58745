"""The one job engine: pipeline runs, evaluations and steering runs are declarations on it.

- :mod:`gcai.jobs.stages`: what a job is made of (whole and batched stages).
- :mod:`gcai.jobs.engine`: :class:`~gcai.jobs.engine.JobKind`, which runs them (Celery
  fan-out, the database join, cancel, resume, progress, usage, failure).
- :mod:`gcai.jobs.guards`: what a job's LLM calls share (cancel polling, usage
  accounting, turning an unreachable server into a job-level failure).
- :mod:`gcai.jobs.models`: the abstract job row and artifact row.
"""
