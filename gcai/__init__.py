"""GCAI: Grounded Constitutional AI research platform."""

from gcai.celery import app as celery_app

__all__ = ("celery_app",)
