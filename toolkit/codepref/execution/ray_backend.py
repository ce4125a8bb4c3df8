"""Execution on a Ray cluster: the same sandboxed pool on every node (SPEC §4.3, scale-out).

``execute(ds, ExecuteConfig(backend="ray"))`` lands here. Layout:

* one ``_NodeExecutor`` actor per alive node that has CPUs, pinned to it (node affinity) and
  reserving its CPUs; inside, a ``WorkerPool`` built from the same ``ExecuteConfig`` limits
  (``slots`` = ``cfg.slots`` or 2 x the node's CPUs, as the local default) — the same fork servers,
  sandbox layers, limits and verdict code as the local backend, so results are identical;
* it implements the one method of :class:`~codepref.execution.backend.ExecutionBackend`,
  ``submit_jobs``: the jobs are cut into chunks of about ``2 x slots`` and a dispatcher thread hands
  each to whichever actor has room (at most two chunks in flight per actor, so its slots do not idle
  at a chunk boundary); each job's future is resolved when its chunk returns. ``execute`` (planning,
  look-ahead across shards, shard-level resume, assembly) is the same code as for the local pool;
* an actor that dies (e.g. its node is lost) is dropped and its chunks go to the others.

Ray is imported only when a ``RayPool`` is made; a missing Ray raises ``BackendError``. An already
initialised Ray is reused, otherwise ``ray.init(address=cfg.ray_address)`` (which starts a local
instance when no address is given or set in ``RAY_ADDRESS``); Ray is left running afterwards, so
later calls do not pay start-up again. Every node needs ``codepref`` installed (same version).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from ..errors import BackendError
from .config import ExecuteConfig, Isolation, SampleResult
from .pool import WorkerPool

logger = logging.getLogger(__name__)

_IN_FLIGHT = 2  # chunks queued per actor
_START_TIMEOUT = 120.0
_MAX_ATTEMPTS = 3  # per chunk, when actors die
_LEVELS = {"none": 0, "partial": 1, "full": 2}


def import_ray() -> Any:
    """The ``ray`` module, or a ``BackendError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "backend='ray' needs Ray, which is not installed: pip install 'codepref[ray]' (or 'ray>=2.60')"
        ) from exc
    return ray


def ensure_ray(address: str | None = None) -> Any:
    """Reuse an initialised Ray, else connect to ``address`` (or ``RAY_ADDRESS``), else start a local one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False  # a private local instance
    try:
        ray.init(**kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError … depending on the failure
        where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
        raise BackendError(f"could not start or join Ray ({where}): {exc}") from exc
    return ray


class _NodeExecutor:
    """Ray actor body (wrapped with ``ray.remote`` at run time): one sandboxed WorkerPool per node."""

    def __init__(self, cfg: ExecuteConfig) -> None:
        self.cfg = cfg
        self.pool = WorkerPool(cfg)

    def info(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "slots": self.pool.n_slots,
            "isolation": self.pool.isolation.as_dict(),
        }

    def run(self, jobs: list[dict]) -> list[SampleResult]:
        return self.pool.map_jobs(jobs)  # the very pool the local backend runs

    def close(self) -> bool:
        self.pool.close()
        return True


def _merge_isolation(infos: list[dict]) -> Isolation:
    isos = [i["isolation"] for i in infos]
    weakest = min(isos, key=lambda d: _LEVELS.get(d["level"], 0))
    notes = tuple(weakest.get("notes", ()))
    if any(d != isos[0] for d in isos):
        notes += (f"nodes differ in isolation: {sorted({d['level'] for d in isos})}; the weakest is recorded",)
    return Isolation(
        level=weakest["level"],
        layers=tuple(weakest["layers"]),
        missing=tuple(weakest.get("missing", ())),
        notes=notes,
    )


@dataclasses.dataclass
class _Chunk:
    jobs: list[dict]
    futures: list[Future]
    attempts: int = 0

    def fail(self, exc: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(exc)


class RayPool:
    """Warm sandboxed pools on every node of a Ray cluster: an ``ExecutionBackend``, like ``WorkerPool``.

    Reuse one across ``execute`` calls (``execute(ds, cfg, pool=ray_pool)``) to pay actor start-up once.
    """

    backend = "ray"

    def __init__(self, cfg: ExecuteConfig, *, start_timeout: float = _START_TIMEOUT) -> None:
        self.cfg = cfg
        self._actors: list[Any] = []
        self._closed = False
        self._pending: deque[_Chunk] = deque()
        self._wake = threading.Condition()
        self._dispatcher: threading.Thread | None = None
        ray = self._ray = ensure_ray(cfg.ray_address)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not nodes:
            raise BackendError("the Ray cluster has no alive node with a CPU")
        actor_cls = ray.remote(_NodeExecutor)
        cpus: list[int] = []
        for node in nodes:
            n_cpu = int(node["Resources"]["CPU"])
            node_cfg = dataclasses.replace(cfg, slots=cfg.slots or 2 * n_cpu, backend="local", ray_address=None)
            actor = actor_cls.options(
                num_cpus=n_cpu,
                max_concurrency=_IN_FLIGHT,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(node_cfg)
            self._actors.append(actor)
            cpus.append(n_cpu)
        try:
            infos = ray.get([a.info.remote() for a in self._actors], timeout=start_timeout)
        except Exception as exc:
            self.close()
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                raise BackendError(
                    f"Ray workers did not start within {start_timeout:.0f} s: each reserves all CPUs of its "
                    "node; is the cluster busy with other work?"
                ) from exc
            raise BackendError(f"a Ray worker failed to start its sandboxed pool: {exc}") from exc
        self._infos = infos
        self._alive = list(range(len(self._actors)))
        self.isolation = _merge_isolation(infos)
        self._cluster = {
            "nodes": len(nodes),
            "cpus": sum(cpus),
            "workers": len(self._actors),
            "slots": sum(i["slots"] for i in infos),
            "ray_version": ray.__version__,
        }
        logger.info("ray execution: %s", self._cluster)

    # -- the ExecutionBackend interface -----------------------------------------------------------
    @property
    def n_slots(self) -> int:
        return sum(self._infos[a]["slots"] for a in self._alive)

    def describe(self) -> dict[str, Any]:
        """The cluster at start-up: nodes, CPUs, workers (one per node) and slots (execute's provenance)."""
        return {"ray_cluster": dict(self._cluster)}

    def submit_jobs(self, jobs: Sequence[dict]) -> list[Future]:
        """One future per job (a ``SampleResult``), resolved as its chunk comes back from the cluster."""
        if self._closed:
            raise RuntimeError("RayPool is closed")
        jobs = list(jobs)
        futures: list[Future] = [Future() for _ in jobs]
        if not jobs:
            return futures
        slots = max(i["slots"] for i in self._infos)
        size = max(1, min(2 * slots, math.ceil(len(jobs) / (2 * max(1, len(self._alive))))))
        with self._wake:
            for a in range(0, len(jobs), size):
                self._pending.append(_Chunk(jobs[a : a + size], futures[a : a + size]))
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(target=self._dispatch, name="codepref-ray", daemon=True)
                self._dispatcher.start()
            self._wake.notify()
        return futures

    def _dispatch(self) -> None:
        ray = self._ray
        inflight: dict[Any, tuple[_Chunk, int]] = {}  # object ref -> (chunk, actor)
        load = dict.fromkeys(range(len(self._actors)), 0)
        while True:
            with self._wake:
                while not self._closed and not self._pending and not inflight:
                    self._wake.wait()
                if self._closed:
                    break
                while self._pending and self._alive:
                    actor = min(self._alive, key=lambda a: load[a])
                    if load[actor] >= _IN_FLIGHT:
                        break
                    chunk = self._pending.popleft()
                    chunk.attempts += 1
                    inflight[self._actors[actor].run.remote(chunk.jobs)] = (chunk, actor)
                    load[actor] += 1
                if not inflight:  # work waits but no actor is left
                    self._fail_pending(BackendError("every Ray execution worker has died"))
                    continue
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            for ref in done:
                chunk, actor = inflight.pop(ref)
                load[actor] -= 1
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    with self._wake:
                        if actor in self._alive:
                            logger.warning("Ray execution worker %d died (%s); moving its work", actor, exc)
                            self._alive.remove(actor)
                        if chunk.attempts >= _MAX_ATTEMPTS:
                            chunk.fail(
                                BackendError(f"Ray execution failed {chunk.attempts} times on one chunk: {exc}")
                            )
                        else:
                            self._pending.appendleft(chunk)
                    continue
                except ray.exceptions.RayError as exc:
                    chunk.fail(BackendError(f"Ray execution failed: {exc}"))
                    continue
                for future, result in zip(chunk.futures, results, strict=True):
                    future.set_result(result)
        for chunk, _ in inflight.values():
            chunk.fail(RuntimeError("RayPool is closed"))

    def _fail_pending(self, exc: BaseException) -> None:
        while self._pending:
            self._pending.popleft().fail(exc)

    # -- shutdown ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers' sandboxed pools and the actors (Ray itself stays up for reuse)."""
        if self._closed:
            return
        with self._wake:
            self._closed = True
            self._fail_pending(RuntimeError("RayPool is closed"))
            self._wake.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        ray = getattr(self, "_ray", None)
        if ray is None or not self._actors:
            return
        with contextlib.suppress(Exception):
            ray.get([a.close.remote() for a in self._actors], timeout=30)
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors = []

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort (module globals may be gone at exit)
        try:  # noqa: SIM105 - not contextlib: it may already be torn down at interpreter exit
            self.close()
        except Exception:
            pass
