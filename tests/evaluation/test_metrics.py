import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codepref.evaluation.metrics import (
    best_at_k,
    common_problems,
    compile_rate,
    mean_pass_at_k,
    median_of_passing,
    pass_at_k,
    solved_n_at_k,
    speedup,
)


def brute_pass_at_k(n, c, k):
    """Fraction of k-subsets of n samples (c passing) containing at least one passing sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def brute_best_at_k(runtimes, passed, k):
    vals = []
    for s in itertools.combinations(range(len(passed)), k):
        rs = [runtimes[i] for i in s if passed[i]]
        if rs:
            vals.append(min(rs))
    return sum(vals) / len(vals)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_enumeration_and_closed_form(nck):
    n, c, k = nck
    value = pass_at_k(n, c, k)
    assert value == pytest.approx(brute_pass_at_k(n, c, k))
    assert value == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
    assert 0.0 <= value <= 1.0
    if k < n:
        assert pass_at_k(n, c, k + 1) >= value - 1e-12  # monotone in k


def test_pass_at_k_known_values():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(100, 1, 100) == 1.0
    assert pass_at_k(200, 20, 100) == pytest.approx(1 - math.comb(180, 100) / math.comb(200, 100))
    assert mean_pass_at_k([10, 10], [0, 5], 1) == pytest.approx(0.25)
    assert mean_pass_at_k([5], [1], 10) is None
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(1, 100)), min_size=1, max_size=8), st.data())
def test_best_at_k_equals_enumeration(rows, data):
    passed = [p for p, _ in rows]
    runtimes = [r for _, r in rows]
    k = data.draw(st.integers(1, len(rows)))
    got = best_at_k(runtimes, passed, k)
    if not any(passed):
        assert got is None
    else:
        assert got == pytest.approx(brute_best_at_k(runtimes, passed, k))


def test_best_at_k_hand_computed():
    # n=3, passing runtimes 1 and 3; k=2: subsets {0,1}->1, {0,2}->1, {1,2}->3 → mean 5/3
    assert best_at_k([1.0, 3.0, None], [True, True, False], 2) == pytest.approx(5 / 3)
    assert best_at_k([1.0, 3.0, None], [True, True, False], 3) == 1.0


RUNS = {
    "base": {"p1": [True, False], "p2": [False, False], "p3": [True, True]},
    "dpo": {"p1": [True, True], "p2": [True, False], "p3": [False, True]},
}


def test_common_problems_and_medians():
    assert common_problems(RUNS) == ["p1", "p3"]
    runtime = {"p1": [10.0, None], "p2": [None, None], "p3": [30.0, 50.0]}
    assert median_of_passing(runtime, RUNS["base"], ["p1", "p3"]) == 30.0
    lengths = {"p1": [100, 7], "p2": [1, 1], "p3": [40, 60]}
    assert median_of_passing(lengths, RUNS["dpo"], ["p1", "p3"]) == 60.0  # 100, 7, 60


def test_speedup_and_optimised():
    base = {"a": 100.0, "b": 100.0, "c": 100.0, "d": None}
    model = {"a": 50.0, "b": 95.0, "c": 200.0, "d": 10.0}
    s = speedup(base, model)
    assert s["problems"] == 3
    assert s["speedup"] == pytest.approx((2.0 + 100 / 95 + 0.5) / 3)
    assert s["optimised"] == pytest.approx(1 / 3)  # only a is ≥10% faster
    assert speedup({}, {})["speedup"] is None


def test_compile_rate_from_outcomes_or_parsing():
    samples = ["def f(:\n", "def f():\n    return 1", "x = (", "print(1)"]
    assert compile_rate(samples) == 0.5
    assert compile_rate(samples, [[4, 4], [0, 1], [4, 4], [2, 2]]) == 0.5
    assert compile_rate([]) is None


def test_n_at_k_public_filter():
    hidden = [False, True, False, True]
    public = [True, False, True, True]
    assert solved_n_at_k(hidden, public, n=2) is False  # submits samples 0 and 2
    assert solved_n_at_k(hidden, public, n=3) is True
    assert solved_n_at_k(hidden, public, n=10, k=2) is False
