import numpy as np
import pytest
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from codepref.errors import ConfigError, DataError
from codepref.pairs import (
    PairsConfig,
    build_pairs,
    code_optimise_pairs,
    codedpo_pairs,
    dstc_pairs,
    iotacode_pairs,
    keep_problem,
    top_fastest,
)
from codepref.ranking import self_validation

NAN = float("nan")


def test_code_optimise_filter():
    assert keep_problem(np.array([1, 1, 0], bool))
    assert not keep_problem(np.array([1, 0, 0], bool))  # one passing
    assert not keep_problem(np.array([1, 1, 1], bool))  # none failing
    assert keep_problem(np.array([1, 0], bool), min_passing=1)
    assert code_optimise_pairs(np.array([1, 0, 0], bool), np.array([5.0, NAN, NAN])) == []


def test_code_optimise_pvf_qvs_all_hand_computed():
    passed = np.array([True, True, False, True, False])
    runtime = np.array([30.0, 10.0, NAN, 20.0, NAN])
    # order fast > slow > failed: 1 (10), 3 (20), 0 (30), then failed 2, 4
    pvf = code_optimise_pairs(passed, runtime, kinds=("pvf",))
    assert pvf == [(1, 2, "pvf"), (1, 4, "pvf"), (3, 2, "pvf"), (3, 4, "pvf"), (0, 2, "pvf"), (0, 4, "pvf")]
    qvs = code_optimise_pairs(passed, runtime, kinds=("qvs",))
    assert qvs == [(1, 3, "qvs"), (1, 0, "qvs"), (3, 0, "qvs")]
    assert code_optimise_pairs(passed, runtime) == pvf + qvs  # All = union
    # a 1.6x gap is needed: 10 vs 20 (2x) and 10 vs 30 (3x) qualify, 20 vs 30 (1.5x) does not
    assert code_optimise_pairs(passed, runtime, kinds=("qvs",), min_speedup=0.6) == [(1, 3, "qvs"), (1, 0, "qvs")]
    released = code_optimise_pairs(passed, runtime, kinds=("qvs",), qvs_include_failed=True)
    assert released == qvs + [(1, 2, "qvs"), (1, 4, "qvs"), (3, 2, "qvs"), (3, 4, "qvs"), (0, 2, "qvs"), (0, 4, "qvs")]


def test_unstable_runtime_counts_as_failed():
    passed = np.array([True, True, True, False])
    runtime = np.array([1.0, NAN, 2.0, NAN])  # sample 1 passed but its runtime never stabilised
    assert code_optimise_pairs(passed, runtime, kinds=("pvf",)) == [
        (0, 1, "pvf"),
        (0, 3, "pvf"),
        (2, 1, "pvf"),
        (2, 3, "pvf"),
    ]


def test_top_fastest():
    passed = np.array([True, True, False, True, True])
    runtime = np.array([4.0, 1.0, NAN, 3.0, 2.0])
    assert top_fastest(passed, runtime, 25) == [1]
    assert top_fastest(passed, runtime, 50) == [1, 4]
    assert top_fastest(passed, runtime, 100) == [1, 4, 3, 0]
    assert top_fastest(np.zeros(3, bool), None, 25) == []


def test_iotacode_levenshtein_and_random():
    samples = [
        "def f(): return 1",
        "def f(): return 2",
        "def f(): retur 1",
        "xxxxxxxxxxxxxxxxxxxxx",
        "def f(): return",
    ]
    passed = np.array([True, False, False, False, True])
    closest = iotacode_pairs(samples, passed, negatives="levenshtein")
    # sample 0: distances to 1, 2, 3 = 1, 1, 21 → tie between 1 and 2 → lowest index (1)
    # sample 4 "def f(): return": to 1 = 2, to 2 = 3 ... → 1
    assert closest == [(0, 1, "closest"), (4, 1, "closest")]
    rnd = iotacode_pairs(samples, passed, negatives="random", seed=3)
    assert [p[0] for p in rnd] == [0, 4] and all(p[1] in (1, 2, 3) and p[2] == "random" for p in rnd)
    assert rnd == iotacode_pairs(samples, passed, negatives="random", seed=3)
    mixes = {tuple(p[2] for p in iotacode_pairs(samples, passed, negatives="mix", seed=s)) for s in range(20)}
    assert len(mixes) > 1
    assert iotacode_pairs(samples, np.ones(5, bool)) == []


def test_codedpo_correctness_pairs_follow_self_validation():
    r = np.array([[1, 1], [0, 1], [0, 0]], dtype=bool)
    pairs = codedpo_pairs(r, damping=0.5, iterations=2, min_margin=0.0)
    scores, _ = self_validation(r, 0.5, 2)  # 2.6875, 1.75, 0.25
    assert pairs[0] == (0, 2, "correctness")  # top vs low first, as the paper stores it
    assert sorted(pairs) == [(0, 1, "correctness"), (0, 2, "correctness"), (1, 2, "correctness")]
    # scores are 2.6875, 1.75, 0.25: a margin of 0.5*2.6875 = 1.34 keeps (0,2) and (1,2) only
    assert sorted(codedpo_pairs(r, damping=0.5, iterations=2, min_margin=0.5)) == [
        (0, 2, "correctness"),
        (1, 2, "correctness"),
    ]
    assert codedpo_pairs(np.ones((3, 2), bool)) == []  # identical scores → no pair


def test_codedpo_efficiency_on_credible_tests_with_penalty():
    # top-ranked code 0 passes t0, t1 (credible); t2 is passed by nobody but code 3.
    r = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=bool)
    runtime = np.array([50.0, 20.0, 5.0, NAN])
    pairs = codedpo_pairs(r, runtime, min_margin=10.0)  # margin too high: efficiency pairs only
    scores, _ = self_validation(r)
    assert int(np.argmax(scores)) == 3
    # top = 3 passes all three tests → credible = all; only code 3 passes all, but has no runtime → penalty
    assert pairs == []
    r2 = r.copy()
    r2[3] = [1, 1, 0]
    pairs = codedpo_pairs(r2, runtime, min_margin=10.0)
    # credible = t0, t1; ok = 0 (50), 1 (20); 2 fails t1 → inf; 3 has no runtime → inf
    assert pairs[0] == (1, 2, "efficiency")  # fastest vs slowest (penalised; tie → lower index)
    assert set(pairs) == {
        (1, 0, "efficiency"),
        (1, 2, "efficiency"),
        (1, 3, "efficiency"),
        (0, 2, "efficiency"),
        (0, 3, "efficiency"),
    }


def test_dstc_pairs_and_infeasible():
    r = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    pairs, info = dstc_pairs(r)
    assert pairs == [(0, 3, "dstc")]
    assert info == {"chosen_code": 0, "chosen_test": 2, "rejected_test": 0, "rejected_code": 3}
    assert dstc_pairs(np.zeros((3, 2), bool))[0] == []
    assert dstc_pairs(np.ones((3, 2), bool))[0] == []


def _row(task_id, passed, runtime=None, matrix=None, gen=None, samples=None):
    n = len(passed)
    return {
        "task_id": task_id,
        "samples": samples or [f"s{i}" for i in range(n)],
        "passed": passed,
        "runtime_ns": runtime,
        "exec_matrix": matrix or [[0 if p else 1] for p in passed],
        "gen_exec_matrix": gen,
    }


def test_build_pairs_dataset_transform_keeps_every_row():
    ds = Dataset.from_list(
        [
            _row("a", [True, True, False], [2.0, 1.0, None]),
            _row("b", [True, False, False], [1.0, None, None]),  # filtered out: keeps the row, no pairs
        ]
    )
    out = build_pairs(ds, PairsConfig(policy="code-optimise"))
    assert len(out) == 2
    assert out[0]["pairs"] == [
        {"chosen": 1, "rejected": 2, "kind": "pvf"},
        {"chosen": 0, "rejected": 2, "kind": "pvf"},
        {"chosen": 1, "rejected": 0, "kind": "qvs"},
    ]
    assert out[1]["pairs"] == []
    assert str(out.features["pairs"]).startswith("List({'chosen': Value('int32')")

    dstc = build_pairs(Dataset.from_list([_row("a", [True, False], gen=[[0, 0], [0, 1]])]), PairsConfig(policy="dstc"))
    assert dstc[0]["pairs"] == [{"chosen": 0, "rejected": 1, "kind": "dstc"}]
    assert dstc[0]["minimax"] == {"chosen_code": 0, "chosen_test": 1, "rejected_test": 1, "rejected_code": 1}


def test_build_pairs_errors():
    with pytest.raises(ConfigError, match="unknown pair policy"):
        PairsConfig(policy="magic")
    with pytest.raises(ConfigError, match="kinds"):
        PairsConfig(kinds=["fast"])
    bad = Dataset.from_list([_row("zz", [True, False], [1.0, None, 3.0])])
    with pytest.raises(DataError, match="'zz'.*runtime_ns.*3 entries"):
        build_pairs(bad)


matrices = arrays(bool, st.tuples(st.integers(2, 7), st.integers(1, 5)))
runtimes = st.lists(st.one_of(st.floats(1, 100), st.just(NAN)), min_size=7, max_size=7)


@settings(max_examples=80, deadline=None)
@given(matrices, runtimes, st.integers(0, 1000))
def test_pairs_properties(r, rts, seed):
    """Chosen is better than rejected by the policy's criterion; no self-pairs; same seed → same pairs."""
    n = r.shape[0]
    passed = r.all(axis=1)
    runtime = np.array(rts[:n])
    ok = passed & ~np.isnan(runtime)
    for c, j, kind in code_optimise_pairs(passed, runtime, qvs_include_failed=seed % 2 == 0):
        assert c != j and ok[c]
        assert (not ok[j]) if kind == "pvf" else (not ok[j] or runtime[j] > runtime[c])
    samples = [f"code {i} " * (i + 1) for i in range(n)]
    for c, j, _ in iotacode_pairs(samples, passed, seed=seed):
        assert passed[c] and not passed[j]
    assert iotacode_pairs(samples, passed, seed=seed) == iotacode_pairs(samples, passed, seed=seed)
    scores, _ = self_validation(r)
    for c, j, kind in codedpo_pairs(r, runtime):
        assert c != j
        if kind == "correctness":
            assert scores[c] > scores[j]
    pairs, info = dstc_pairs(r, seed)
    for c, j, _ in pairs:  # DSTC's criterion is on the concatenated responses: (c*, t*) passes, (c', t') fails
        # c* = c' is a valid pair (the responses differ in their test); the responses never coincide
        assert (c, info["chosen_test"]) != (j, info["rejected_test"]) and r[c].sum() >= r[j].sum()
        assert r[c, info["chosen_test"]] and not r[j, info["rejected_test"]]
    assert dstc_pairs(r, seed) == dstc_pairs(r, seed)
