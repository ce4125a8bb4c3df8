"""Deprecated module name: the execute stage lives in :mod:`codepref.execution.stage` (this alias keeps
imports written before the stage modules were unified working; no code lives here)."""

from .config import ExecuteConfig
from .stage import execute

__all__ = ["ExecuteConfig", "execute"]
