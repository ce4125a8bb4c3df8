"""Shared helpers of the execution tests."""

from __future__ import annotations

from codepref.execution import WorkerPool


def has_layer(pool: WorkerPool, layer: str) -> bool:
    """Whether ``pool`` really runs with the isolation layer whose name starts with ``layer``."""
    return any(x.startswith(layer) for x in pool.isolation.layers)
