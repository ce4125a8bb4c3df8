import numpy as np
import pytest
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from codepref.errors import ConfigError, DataError
from codepref.ranking import (
    MinimaxChoice,
    RankConfig,
    dual_agreement,
    minimax,
    pass_counts,
    pass_matrix,
    rank,
    self_validation,
)


def test_pass_matrix_accepts_outcome_codes_and_bools():
    codes = [[0, 1, 2], [3, 0, 5]]
    assert pass_matrix(codes).tolist() == [[True, False, False], [False, True, False]]
    assert pass_matrix(np.array([[True, False]])).tolist() == [[True, False]]
    assert pass_counts([[0, 0, 4], [1, 1, 1]]).tolist() == [2, 0]
    assert pass_matrix([[], []]).shape == (2, 0)


def test_self_validation_codedpo_worked_example():
    """CodeDPO Figure 2: d=0.5, T=2; code-1 passes test-1 and test-2, code-2 passes test-2."""
    r = np.array([[1, 1], [0, 1], [0, 0]], dtype=bool)
    codes, tests = self_validation(r, damping=0.5, iterations=1)
    assert codes.tolist() == [1.75, 1.25, 0.5]
    assert tests.tolist() == [1.0, 1.5]
    codes, tests = self_validation(r, damping=0.5, iterations=2)
    assert codes[0] == pytest.approx(2.6875)
    # by hand: t1 = .5*1 + .5*1.75 = 1.375; t2 = .5*1.5 + .5*(1.75+1.25) = 2.25
    assert tests.tolist() == [1.375, 2.25]
    assert codes.tolist() == [2.6875, 0.5 * 1.25 + 0.5 * 2.25, 0.25]


def test_self_validation_defaults_and_zero_iterations():
    r = np.array([[1, 0], [1, 1]], dtype=bool)
    codes, tests = self_validation(r, iterations=0)
    assert codes.tolist() == [1, 1] and tests.tolist() == [1, 1]
    codes, _ = self_validation(r)
    assert codes[1] > codes[0] > 0


def test_minimax_hand_computed():
    #            t0 t1 t2 t3
    r = np.array(
        [
            [1, 1, 1, 0],  # c0: 3 passes → chosen code
            [1, 1, 0, 0],  # c1: 2
            [1, 0, 0, 0],  # c2: 1
            [0, 0, 0, 0],
        ],  # c3: 0
        dtype=bool,
    )
    # column sums: t0=3, t1=2, t2=1, t3=0. c0 passes t0,t1,t2 → hardest it passes: t2.
    # discriminating tests (some code fails): all; easiest = t0 (3 passes). Codes failing t0: c3 → rejected.
    assert minimax(r) == MinimaxChoice(chosen_code=0, chosen_test=2, rejected_test=0, rejected_code=3)


def test_minimax_infeasible_cases():
    none_pass = minimax(np.zeros((3, 2), bool))
    assert none_pass.chosen_code is None and none_pass.chosen_test is None
    all_pass = minimax(np.ones((3, 2), bool))  # no discriminating test
    assert all_pass.chosen_code is not None and all_pass.rejected_test is None and all_pass.rejected_code is None
    assert minimax(np.zeros((0, 0), bool)) == MinimaxChoice(None, None, None, None)


def test_minimax_ties_are_seeded_and_deterministic():
    r = np.array([[1, 0], [1, 0], [1, 0], [0, 0]], dtype=bool)
    picks = {minimax(r, seed=s).chosen_code for s in range(30)}
    assert picks == {0, 1, 2}  # every tied best code can be chosen ...
    assert all(minimax(r, seed=7) == minimax(r, seed=7) for _ in range(5))  # ... but always the same per seed


def test_dual_agreement_codet_clusters():
    r = np.array(
        [
            [1, 1, 0],  # cluster A (tests {0,1}), size 2 → 2*2 = 4
            [1, 1, 0],
            [1, 1, 1],  # cluster B, size 1 → 1*3 = 3
            [0, 0, 0],  # passes nothing → 0
            [0, 0, 0],
        ],
        dtype=bool,
    )
    assert dual_agreement(r).tolist() == [4, 4, 3, 0, 0]


def row(task_id, exec_matrix, gen=None):
    return {
        "task_id": task_id,
        "samples": ["s"] * len(exec_matrix),
        "exec_matrix": exec_matrix,
        "gen_exec_matrix": gen,
    }


def test_rank_transform_every_method_and_test_source():
    ds = Dataset.from_list([row("a", [[0, 1], [0, 0], [1, 1]], gen=[[0], [1], [0]])])
    out = rank(ds, RankConfig(method="pass_count"))
    assert out[0]["score"] == [1, 2, 0] and out[0]["test_score"] == [2, 1]
    out = rank(ds, RankConfig(method="pass_count", tests="both"))
    assert out[0]["score"] == [2, 2, 1] and out[0]["test_score"] == [2, 1, 2]
    out = rank(ds, RankConfig(method="pass_count", tests="generated"))
    assert out[0]["score"] == [1, 0, 1]
    out = rank(ds, RankConfig(method="self_validation", damping=0.5, iterations=2))
    assert out[0]["score"] == pytest.approx(self_validation(np.array([[1, 0], [1, 1], [0, 0]], bool), 0.5, 2)[0])
    out = rank(ds, RankConfig(method="minimax"))
    assert out[0]["score"] == [0, 1, -1]
    out = rank(ds, RankConfig(method="dual_agreement"))
    assert out[0]["score"] == [1, 2, 0]


def test_rank_errors():
    with pytest.raises(ConfigError, match="unknown ranking method"):
        RankConfig(method="elo")
    ds = Dataset.from_list([row("a", [[0]])])
    with pytest.raises(DataError, match="'a'.*gen_exec_matrix"):
        rank(ds, RankConfig(tests="generated"))


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 6))), st.integers(0, 2**16))
def test_minimax_properties(r, seed):
    c = minimax(r, seed)
    rows, cols = r.sum(axis=1), r.sum(axis=0)
    if c.chosen_code is not None:
        assert rows[c.chosen_code] == rows.max() > 0
        assert r[c.chosen_code, c.chosen_test]
        assert cols[c.chosen_test] == cols[r[c.chosen_code]].min()
    if c.rejected_test is not None:
        assert cols[c.rejected_test] < r.shape[0]
        assert not r[c.rejected_code, c.rejected_test]
        assert rows[c.rejected_code] == rows[~r[:, c.rejected_test]].min()
    assert c == minimax(r, seed)


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 6))))
def test_self_validation_monotone_in_passed_tests(r):
    """A code passing a superset of another's tests never scores lower."""
    codes, _ = self_validation(r)
    for i in range(r.shape[0]):
        for j in range(r.shape[0]):
            if (r[i] >= r[j]).all():
                assert codes[i] >= codes[j] - 1e-9
