"""``code_eval``'s contract, judged by codepref's sandbox (the function behind :data:`EVALUATE_METRIC`).

🤗 ``evaluate.load("code_eval")`` needs the Hub and runs every candidate in a subprocess of the caller,
``exec`` of candidate + test in one namespace, behind ``HF_ALLOW_CODE_EVAL=1``: a candidate can make its
own test pass (an object equal to everything, a patched builtin). Here each candidate runs in
codepref's sandbox and each reference (test program) in a judge process the candidate cannot reach;
values cross between them as plain data, so a candidate decides only its own return values.

Inputs and outputs are ``code_eval``'s: ``predictions`` (candidate programs per problem), ``references``
(one test program per problem), ``k``; returns ``(pass_at_k, results)`` with ``pass_at_k = {"pass@k":
mean}`` for every k no larger than every problem's candidate count, and ``results[problem] =
[(candidate index, {"task_id", "completion_id", "passed", "result", "trust"}), ...]``; ``trust`` says whether
the test program was judged outside the candidate's process (``judged``) or had to run inside it
(``in-process``: a test that needs the candidate's own types; not run, an error, unless the config's
``in_process_tests`` is set, and then its verdict is forgeable; see ``codepref.execution.trust``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..execution.config import ExecutionConfig, Outcome
from .metrics import pass_at_k

# evaluate.load(EVALUATE_METRIC) works offline: the metric script ships inside codepref
EVALUATE_METRIC = str(Path(__file__).with_name("code_eval_metric.py"))

_RESULT = {Outcome.PASS: "passed", Outcome.TIMEOUT: "timed out"}


def compute_code_eval(
    predictions: Sequence[Sequence[str]],
    references: Sequence[str],
    k: Sequence[int] | int = (1, 10, 100),
    num_workers: int = 4,
    timeout: float = 3.0,
    execution: ExecutionConfig | None = None,
) -> tuple[dict[str, float], dict[int, list[tuple[int, dict[str, Any]]]]]:
    """pass@k of ``predictions`` against ``references`` (``code_eval``'s arguments and return value).

    ``execution`` sets every sandbox limit (its ``timeout`` and ``slots`` win over ``timeout`` and
    ``num_workers``, which are ``code_eval``'s names for them).
    """
    from ..execution import WorkerPool

    if len(predictions) != len(references):
        raise DataError(
            f"predictions has {len(predictions)} problems but references has {len(references)}", field="references"
        )
    for i, (candidates, test) in enumerate(zip(predictions, references, strict=True)):
        if isinstance(candidates, str) or not all(isinstance(c, str) for c in candidates):
            raise DataError("must be a list of candidate programs", field="predictions", row=i)
        if not isinstance(test, str):
            raise DataError("must be a test program (a string)", field="references", row=i)
    ks = [k] if isinstance(k, int) else list(k)
    cfg = execution or ExecutionConfig(timeout=timeout, slots=num_workers)
    jobs = [
        (i, j, WorkerPool.assert_job(c, [t], ""))
        for i, (cs, t) in enumerate(zip(predictions, references, strict=True))
        for j, c in enumerate(cs)
    ]
    with WorkerPool(cfg) as pool:
        outcomes = pool.map_jobs([job for _, _, job in jobs])
    results: dict[int, list[tuple[int, dict[str, Any]]]] = {i: [] for i in range(len(predictions))}
    for (i, j, job), res in zip(jobs, outcomes, strict=True):
        code = Outcome(res.codes[0]) if res.codes else Outcome.ERROR
        verdict = _RESULT.get(code, f"failed: {code.name.lower()}")
        entry = {"task_id": i, "completion_id": j, "passed": res.passed, "result": verdict, "trust": job["trust"][0]}
        results[i].append((j, entry))
    total = np.array([len(cs) for cs in predictions])
    correct = np.array([sum(r["passed"] for _, r in results[i]) for i in range(len(predictions))])
    scores = {
        f"pass@{kk}": float(np.mean([pass_at_k(int(n), int(c), kk) for n, c in zip(total, correct, strict=True)]))
        for kk in ks
        if len(total) and (total >= kk).all()
    }
    return scores, results
