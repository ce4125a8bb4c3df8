"""Execution on a Ray cluster: the same sandboxed pool on every node (SPEC §4.3, scale-out).

``execute(ds, ExecuteConfig(backend="ray"))`` lands here. Layout:

* one ``_NodeExecutor`` actor per alive node that has CPUs, pinned to it (node affinity) and
  reserving its CPUs; inside, a ``WorkerPool`` built from the same ``ExecuteConfig`` limits
  (``slots`` = ``cfg.slots`` or 2 x the node's CPUs, as the local default) — the same fork servers,
  sandbox layers, limits and verdict code as the local backend, so results are identical;
* the driver still runs ``map_in_shards`` (shard-level resume with ``work_dir`` is unchanged); each
  shard's rows are cut into chunks of about ``2 x slots`` sample jobs and handed to whichever actor
  has room (at most two chunks in flight per actor, so its slots do not idle at a chunk boundary);
  results are put back in input order;
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
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import BackendError
from .config import Isolation
from .pool import WorkerPool

if TYPE_CHECKING:
    from .transform import ExecuteConfig

logger = logging.getLogger(__name__)

# the row fields execution reads; nothing else is shipped to the workers
_FIELDS = ("task_id", "samples", "tests", "test_setup", "io_tests", "gen_tests")
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
            "slots": len(self.pool._slots),
            "isolation": self.pool.isolation.as_dict(),
        }

    def run(self, rows: list[dict], want_gt: bool, want_gen: bool) -> dict[str, list]:
        from .transform import _execute_rows  # the very code the local backend runs

        return _execute_rows(rows, self.pool, self.cfg, want_gt, want_gen)

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


class RayPool:
    """Warm sandboxed pools on every node of a Ray cluster, used like a ``WorkerPool`` by ``execute``.

    Reuse one across ``execute`` calls (``execute(ds, cfg, pool=ray_pool)``) to pay actor start-up once.
    """

    backend = "ray"

    def __init__(self, cfg: ExecuteConfig, *, start_timeout: float = _START_TIMEOUT) -> None:
        self.cfg = cfg
        self._actors: list[Any] = []
        self._closed = False
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

    # -- API used by execute -------------------------------------------------------------------------
    def cluster_info(self) -> dict[str, Any]:
        """Cluster size at start-up (recorded in the execute provenance)."""
        return dict(self._cluster)

    def _chunks(self, rows: list[dict], want_gt: bool, want_gen: bool) -> list[list[dict]]:
        per_sample = int(want_gt) + int(want_gen)
        weights = [max(1, len(r.get("samples") or []) * per_sample) for r in rows]
        slots = max(i["slots"] for i in self._infos)
        target = max(1, min(2 * slots, math.ceil(sum(weights) / (2 * len(self._alive)))))
        chunks: list[list[dict]] = [[]]
        load = 0
        for row, w in zip(rows, weights, strict=True):
            if chunks[-1] and load + w > target:
                chunks.append([])
                load = 0
            chunks[-1].append(row)
            load += w
        return chunks

    def run_rows(self, rows: list[dict], want_gt: bool, want_gen: bool) -> dict[str, list]:
        """The execute columns for ``rows`` (already checked), computed across the cluster, in input order."""
        if self._closed:
            raise RuntimeError("RayPool is closed")
        if not rows:
            return {}
        ray = self._ray
        slim = [{k: r.get(k) for k in _FIELDS if k in r} for r in rows]
        chunks = self._chunks(slim, want_gt, want_gen)
        results: list[dict[str, list] | None] = [None] * len(chunks)
        pending = deque(range(len(chunks)))
        attempts = [0] * len(chunks)
        inflight: dict[Any, tuple[int, int]] = {}  # object ref -> (chunk, actor)
        load = dict.fromkeys(self._alive, 0)
        while pending or inflight:
            while pending and self._alive:
                actor = min(self._alive, key=lambda a: load[a])
                if load[actor] >= _IN_FLIGHT:
                    break
                c = pending.popleft()
                attempts[c] += 1
                inflight[self._actors[actor].run.remote(chunks[c], want_gt, want_gen)] = (c, actor)
                load[actor] += 1
            if not inflight:
                raise BackendError("every Ray execution worker has died")
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                c, actor = inflight.pop(ref)
                load[actor] -= 1
                try:
                    results[c] = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    if actor in self._alive:
                        logger.warning("Ray execution worker %d died (%s); moving its work", actor, exc)
                        self._alive.remove(actor)
                    if attempts[c] >= _MAX_ATTEMPTS:
                        raise BackendError(f"Ray execution failed {attempts[c]} times on one chunk: {exc}") from exc
                    pending.appendleft(c)
                except ray.exceptions.RayError as exc:
                    raise BackendError(f"Ray execution failed: {exc}") from exc
        out: dict[str, list] = {}
        for part in results:
            assert part is not None
            for key, values in part.items():
                out.setdefault(key, []).extend(values)
        return out

    # -- shutdown ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers' sandboxed pools and the actors (Ray itself stays up for reuse)."""
        if self._closed:
            return
        self._closed = True
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
