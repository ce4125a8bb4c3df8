"""Uncertainty of a comparison between two runs on the same problems: paired bootstrap and permutation test.

Problems are the unit of resampling (the samples of one problem are not independent): every interval
resamples problems with replacement, the same problems for the model and the base (paired), and
takes the percentile interval of the statistic (Efron & Tibshirani, 1993, §13.3). The paired test of
pass@1 is a sign-flip permutation test on the per-problem differences: exact (all 2^n sign patterns)
up to 16 problems, Monte Carlo with ``resamples`` draws above.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate and its ``confidence`` percentile interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` × ``n`` problem indices drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def percentile_interval(estimate: float, replicates: np.ndarray, confidence: float) -> Interval:
    """The percentile interval of bootstrap ``replicates`` (NaN replicates — an undefined statistic — dropped)."""
    values = replicates[~np.isnan(replicates)]
    if values.size == 0:
        return Interval(estimate, float("nan"), float("nan"), confidence)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), confidence)


def paired_difference(
    model: Sequence[float], base: Sequence[float], *, resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Mean over problems of ``model - base`` (e.g. per-problem pass@1), with a paired bootstrap interval."""
    d = np.asarray(model, dtype=float) - np.asarray(base, dtype=float)
    if d.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), confidence)
    idx = bootstrap_indices(d.size, resamples, seed)
    return percentile_interval(float(d.mean()), d[idx].mean(axis=1), confidence)


def paired_ratio(
    statistic: Callable[[np.ndarray], float | None],
    problems: int,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """A statistic of a set of problems (given as an index array, repeats allowed), e.g. the ratio of the
    model's median runtime to the base's over those problems, with its bootstrap interval over problems."""
    every = np.arange(problems)
    estimate = statistic(every)
    if problems == 0 or estimate is None:
        return Interval(float("nan"), float("nan"), float("nan"), confidence)
    idx = bootstrap_indices(problems, resamples, seed)
    replicates = np.array([np.nan if (v := statistic(row)) is None else v for row in idx], dtype=float)
    return percentile_interval(float(estimate), replicates, confidence)


def paired_permutation_test(differences: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of "no difference" for paired per-problem differences (sign-flip permutation test).

    Under the null each difference is as likely to have either sign; the p-value is the share of sign
    patterns whose |sum| is at least the observed |sum| (exact enumeration up to 16 problems).
    """
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]  # a zero difference has the same sum under either sign
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    if d.size <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(resamples, d.size))
    sums = np.abs(signs @ d)
    return float(np.mean(sums >= observed - 1e-12))
