"""Intervals and the paired test of codepref compare, against exact enumeration."""

import itertools

import numpy as np
import pytest
from datasets import Dataset

from codepref.evaluation import compare_runs
from codepref.evaluation.intervals import paired_difference, paired_permutation_test, paired_ratio
from codepref.evaluation.report import markdown_report


def test_bootstrap_interval_matches_exact_enumeration():
    model, base = np.array([1.0, 0.5, 0.75, 0.0]), np.array([0.0, 0.25, 0.25, 0.0])
    d = model - base  # 1, 0.25, 0.5, 0
    # the exact bootstrap distribution: all 4^4 equally likely resamples of the 4 problems
    exact = np.array([d[list(idx)].mean() for idx in itertools.product(range(4), repeat=4)])
    low, high = np.percentile(exact, [2.5, 97.5])
    got = paired_difference(model, base, resamples=200_000, seed=1)
    assert got.estimate == pytest.approx(0.4375)
    assert got.low == pytest.approx(low, abs=0.0626) and got.high == pytest.approx(high, abs=0.0626)
    assert paired_difference(model, base, seed=1) == paired_difference(model, base, seed=1)  # seeded
    same = paired_difference([0.5, 0.5], [0.25, 0.25])
    assert (same.estimate, same.low, same.high) == (0.25, 0.25, 0.25)


def test_permutation_test_is_exact_for_small_samples():
    assert paired_permutation_test([1, 1, 1, 1]) == pytest.approx(2 / 16)  # only all-+ and all-- reach |4|
    assert paired_permutation_test([2, 1]) == pytest.approx(2 / 4)  # sums 3, 1, -1, -3
    assert paired_permutation_test([1, -1]) == 1.0
    assert paired_permutation_test([0, 0, 0]) == 1.0


def test_ratio_interval_over_problems():
    num, den = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    got = paired_ratio(lambda idx: float(np.median(num[idx]) / np.median(den[idx])), 3, resamples=2000)
    assert (got.estimate, got.low, got.high) == (2.0, 2.0, 2.0)  # every resample keeps the ratio


def test_compare_reports_differences_with_intervals_and_p_value():
    base_passed = [[True, False, False, False], [False] * 4, [True, True, False, False], [False] * 4]
    model_passed = [[True, True, False, False], [True, False, False, False], [True, True, True, False], [False] * 4]

    def run(passed):
        return Dataset.from_list(
            [{"task_id": f"t/{i}", "samples": ["x = 1"] * 4, "passed": p} for i, p in enumerate(passed)]
        )

    cmp = compare_runs({"base": run(base_passed), "dpo": run(model_passed)}, base="base", ks=[1], resamples=5000)
    vs = cmp["models"]["dpo"]["vs_base"]["pass@k"]["1"]
    diffs = [0.25, 0.25, 0.25, 0.0]  # per-problem pass@1 differences, by hand
    assert vs["estimate"] == pytest.approx(np.mean(diffs))
    assert vs["low"] <= vs["estimate"] <= vs["high"] and vs["low"] >= 0.0
    assert vs["p_value"] == pytest.approx(2 / 8)  # three non-zero equal differences: 2 of 2^3 sign patterns
    own = cmp["models"]["dpo"]["pass@k_intervals"]["1"]
    assert own["estimate"] == pytest.approx(cmp["models"]["dpo"]["metrics"]["pass@k"]["1"])
    assert cmp["intervals"]["resamples"] == 5000
    report = markdown_report(cmp)
    assert "Δ pass@1" in report and "+18.8 pp" in report
