"""The execution-backend interface: what ``execute`` (and anything else that runs jobs) needs.

A backend runs sandbox jobs (built with ``WorkerPool.assert_job`` / ``WorkerPool.io_job``) and
returns one future per job; that is the whole interface (as open-r1's code providers expose one
``execute_scripts``). ``WorkerPool`` (this machine) and ``RayPool`` (the same pool on every node of a
Ray cluster) implement it; ``execute``'s planning, look-ahead, resume and assembly are the same for
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from .config import ExecuteConfig, Isolation


@runtime_checkable
class ExecutionBackend(Protocol):
    """Runs sandbox jobs: ``submit_jobs`` returns one future per job (a ``SampleResult`` each)."""

    backend: str  # "local" | "ray": the ExecuteConfig.backend it serves
    isolation: Isolation  # the sandbox layers in force (the weakest node's, on a cluster)
    n_slots: int  # jobs it runs at once

    def submit_jobs(self, jobs: Sequence[dict]) -> list[Future]: ...

    def describe(self) -> dict[str, Any]: ...  # what provenance records about it, besides isolation

    def close(self) -> None: ...


def open_backend(cfg: ExecuteConfig) -> ExecutionBackend:
    """The backend ``cfg.backend`` names, started (Ray is imported only for ``backend="ray"``)."""
    if cfg.backend == "ray":
        from .ray_backend import RayPool

        return RayPool(cfg)
    from .pool import WorkerPool

    return WorkerPool(cfg)
