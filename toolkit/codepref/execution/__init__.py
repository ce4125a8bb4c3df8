"""Execution stage: run untrusted samples against tests in warm, isolated fork servers.

>>> from codepref.execution import ExecutionConfig, WorkerPool
>>> with WorkerPool(ExecutionConfig(timeout=3.0)) as pool:          # doctest: +SKIP
...     pool.run_asserts("def f(x):\n    return x + 1\n", ["assert f(1) == 2"]).codes
[0]
"""

from ..sandbox.inside.compare import outputs_match
from .backend import ExecutionBackend, open_backend
from .config import ExecuteConfig, ExecutionConfig, Isolation, Outcome, SampleResult
from .pool import SandboxError, WorkerPool, exec_matrix
from .ray_backend import RayPool
from .stage import execute

__all__ = [
    "ExecuteConfig",
    "ExecutionBackend",
    "ExecutionConfig",
    "Isolation",
    "Outcome",
    "RayPool",
    "SampleResult",
    "SandboxError",
    "WorkerPool",
    "exec_matrix",
    "execute",
    "open_backend",
    "outputs_match",
]
