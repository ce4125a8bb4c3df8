"""Deprecated module name: ``codepref eval`` lives in :mod:`codepref.evaluation.stage` (this alias keeps
imports written before the stage modules were unified working; no code lives here)."""

from .stage import EvalConfig, evaluate, load_run

__all__ = ["EvalConfig", "evaluate", "load_run"]
