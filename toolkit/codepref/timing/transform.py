"""Deprecated module name: the time stage lives in :mod:`codepref.timing.stage` (this alias keeps imports
written before the stage modules were unified working; no code lives here)."""

from .stage import OUTPUT_COLUMNS, plan_row, time_samples

__all__ = ["OUTPUT_COLUMNS", "plan_row", "time_samples"]
