"""Evaluation metrics of the four papers, on per-sample results.

- :func:`pass_at_k` — the unbiased estimator 1 − C(n−c, k)/C(n, k) (Chen et al., 2021);
- :func:`best_at_k` — expected runtime of the fastest passing solution among k samples
  (Code-Optimise §5, best@k), estimated without bias from all n samples;
- :func:`common_problems` — problems every compared run solves at least once (Code-Optimise
  computes runtime and length there);
- :func:`median_of_passing` — median runtime / length (characters) of working solutions;
- :func:`solution_length` — a solution's length in characters, the model's own code only;
- :func:`speedup` — CodeDPO §5.2 (after Shypula et al.): mean per-problem speed-up over a
  base and the share of problems optimised (≥ 10% faster) on commonly solved problems;
- :func:`compile_rate` — share of samples that compile (IotaCode);
- :func:`solved_n_at_k` — AlphaCode/IotaCode n@k: submit up to n of the first k samples
  that pass the public tests; solved if one passes the hidden tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SYNTAX = 4


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` pass.

    Computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i), the numerically stable form of
    1 − C(n−c, k)/C(n, k). With k > n there is no k-subset: the value is pass@n (1 if any sample
    passes, else 0) — never 1 for a problem no sample solves (``code_eval``'s estimator returns 1.0
    there, since n − c < k).
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"need k >= 1, got k={k}")
    if k > n:  # no k-subset exists; all n samples are the best estimate (pass@n, a lower bound of pass@k)
        return 1.0 if c > 0 else 0.0
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(ns: Sequence[int], cs: Sequence[int], k: int) -> float | None:
    """pass@k averaged over problems (``None`` when some problem has fewer than k samples)."""
    if any(n < k for n in ns) or not ns:
        return None
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(ns, cs, strict=True)]))


def best_at_k(runtimes: Sequence[float | None], passed: Sequence[bool], k: int) -> float | None:
    """Expected runtime of the fastest passing sample in a random k-subset, given one passes.

    With the c passing runtimes sorted r_1 ≤ … ≤ r_c among n samples, the fastest passing
    sample of a k-subset is r_j with probability C(n−j, k−1)/C(n, k); we return
    Σ_j r_j·P_j / (1 − C(n−c, k)/C(n, k)). ``None`` if no sample passes.
    """
    n = len(passed)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    r = np.sort([float(t) for t, p in zip(runtimes, passed, strict=True) if p and t is not None])
    if r.size == 0:
        return None
    # P_j = C(n-j, k-1) / C(n, k) computed as a running product to stay in floating range
    probs = np.empty(r.size)
    for j in range(1, r.size + 1):
        probs[j - 1] = _ratio_binom(n - j, k - 1, n, k)
    return float((r * probs).sum() / probs.sum())


def _ratio_binom(a: int, b: int, n: int, k: int) -> float:
    """C(a, b) / C(n, k) without overflow (0 when a < b)."""
    if a < b or b < 0:
        return 0.0
    from math import lgamma

    def lbinom(x: int, y: int) -> float:
        return lgamma(x + 1) - lgamma(y + 1) - lgamma(x - y + 1)

    return float(np.exp(lbinom(a, b) - lbinom(n, k)))


def common_problems(runs: Mapping[str, Mapping[str, Sequence[bool]]]) -> list[str]:
    """Task ids that every run solves at least once (``runs``: name → {task_id → passed list})."""
    solved = [{tid for tid, p in r.items() if any(p)} for r in runs.values()]
    if not solved:
        return []
    common = set.intersection(*solved)
    first = next(iter(runs.values()))
    return [tid for tid in first if tid in common]


def solution_length(sample: str, prompt: str | None = None) -> int:
    """Characters of one solution: what the model wrote (Code-Optimise §4.3: "the number of characters
    of all working solutions").

    A completion model's program is the prompt (signature and docstring) followed by its continuation;
    the prompt is not part of its solution, so a sample that starts with ``prompt`` counts without it.
    """
    if prompt and sample.startswith(prompt):
        return len(sample) - len(prompt)
    stripped = (prompt or "").rstrip()
    if stripped and sample.startswith(stripped):  # the prompt's trailing blank lines were normalised
        return len(sample[len(stripped) :].lstrip("\n"))
    return len(sample)


def median_of_passing(
    values: Mapping[str, Sequence[float | None]], passed: Mapping[str, Sequence[bool]], problems: Sequence[str]
) -> float | None:
    """Median of a per-sample value (runtime or length) over the passing samples of ``problems``."""
    pooled = [
        float(v) for tid in problems for v, p in zip(values[tid], passed[tid], strict=True) if p and v is not None
    ]
    return float(np.median(pooled)) if pooled else None


def per_problem_median(values: Sequence[float | None], passed: Sequence[bool]) -> float | None:
    vals = [float(v) for v, p in zip(values, passed, strict=True) if p and v is not None]
    return float(np.median(vals)) if vals else None


def speedup(
    base: Mapping[str, float | None], model: Mapping[str, float | None], threshold: float = 0.10
) -> dict[str, float | int | None]:
    """Mean speed-up base/model and % optimised (model ≥ ``threshold`` faster, i.e. runtime ≤ (1−t)·base).

    ``base``/``model``: task id → a runtime of that problem's passing solutions (e.g. the
    median); only problems with a runtime on both sides count.
    """
    common = [t for t in base if base[t] is not None and model.get(t) is not None and model[t] > 0]
    if not common:
        return {"problems": 0, "speedup": None, "optimised": None}
    ratios = np.array([base[t] / model[t] for t in common])
    optimised = np.mean([model[t] <= (1.0 - threshold) * base[t] for t in common])
    return {"problems": len(common), "speedup": float(ratios.mean()), "optimised": float(optimised)}


def compiles(program: str) -> bool:
    """Whether ``compile()`` accepts the program (the compiler's checks too: a top-level ``return``,
    ``break`` outside a loop or a misplaced ``nonlocal`` do not compile). Compiling runs nothing."""
    try:
        compile(program, "<sample>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def compile_rate(samples: Sequence[str], exec_matrix: Sequence[Sequence[int]] | None = None) -> float | None:
    """Share of samples that compile: no outcome code 4 in their execution row, else ``compile()``."""
    if not samples:
        return None
    if exec_matrix is not None and all(len(row) for row in exec_matrix):
        ok = [SYNTAX not in row for row in exec_matrix]
    else:
        ok = [compiles(s) for s in samples]
    return float(np.mean(ok))


def solved_n_at_k(
    hidden_passed: Sequence[bool], public_passed: Sequence[bool], n: int = 10, k: int | None = None
) -> bool:
    """n@k: of the first k samples, submit up to n that pass the public tests; solved if one passes hidden."""
    k = len(hidden_passed) if k is None else k
    submitted = [h for h, p in list(zip(hidden_passed, public_passed, strict=True))[:k] if p][:n]
    return any(submitted)
