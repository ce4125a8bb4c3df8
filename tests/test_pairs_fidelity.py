"""Issue 18: the pair policies exactly as their papers define them (hand-computed cases)."""

import numpy as np
import pytest
from datasets import Dataset

from codepref.pairs import (
    PairsConfig,
    build_pairs,
    code_optimise_pairs,
    codedpo_pairs,
    codedpo_paper_pair,
    codedpo_split,
    dstc_pairs,
    program_key,
)

NAN = float("nan")


def test_program_key_ignores_comments_blank_lines_and_spacing_only():
    a = "def f(x):\n    # double it\n    return x*2\n"
    b = "def f(x):\n\n    return x * 2   # fast\n"
    assert program_key(a) == program_key(b)
    assert program_key(a) != program_key("def f(x):\n    return x + x\n")
    assert program_key("def f(x):\n    if x:\n        return 1\n    return 2\n") != program_key(
        "def f(x):\n    if x:\n        return 1\n        return 2\n"
    )  # indentation is part of the program


def test_quick_vs_slow_never_pairs_one_program_with_itself():
    programs = [
        "def f(x):\n    return sorted(x)[0]\n",
        "def f(x):\n    # the same, commented\n    return sorted(x)[0]\n",
        "def f(x):\n    return min(x)\n",
        "def f(x):\n    return x[0]\n",  # fails
    ]
    passed = np.array([1, 1, 1, 0], bool)
    runtime = np.array([300.0, 200.0, 100.0, NAN])  # 0 and 1 differ only by noise
    qvs = code_optimise_pairs(passed, runtime, kinds=("qvs",), programs=programs)
    assert qvs == [(2, 1, "qvs"), (2, 0, "qvs")]  # never (1, 0): one program
    assert (1, 0, "qvs") in code_optimise_pairs(passed, runtime, kinds=("qvs",))  # without programs: by time only


def test_pipeline_default_needs_a_speedup_above_the_resolution():
    rows = [
        {"task_id": "t", "samples": ["a = 1", "b = 2", "c = 3", "d"], "passed": [True, True, True, False],
         "runtime_ns": [100.0, 103.0, 110.0, None]},
    ]  # fmt: skip
    cfg = PairsConfig(policy="code-optimise", kinds=["qvs"])
    assert cfg.min_speedup == 0.05
    pairs = build_pairs(Dataset.from_list(rows), cfg)[0]["pairs"]
    # 103 vs 100 is within 5%: no pair; 110 vs 100 and 110 vs 103 (6.8%) are
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(0, 2), (1, 2)]


def test_codedpo_paper_pair_is_top_vs_low_or_fast_vs_slow():
    r = np.array([[1, 1], [0, 1], [0, 0], [1, 1]], dtype=bool)
    runtime = np.array([50.0, NAN, NAN, 20.0])
    pairs = codedpo_pairs(r, runtime, damping=0.5, iterations=2, min_margin=0.0)
    # scores: 0 and 3 tie on top (both pass both tests), 2 is lowest; top = argmax = 0 (first)
    assert codedpo_paper_pair(pairs, "correctness") == [(0, 2, "correctness")]
    # credible = tests 0, 1 (code 0 passes both); 3 is fastest (20), 1 and 2 fail a credible test → penalty,
    # slowest = 1 (penalised, lower index first among the penalised)
    assert codedpo_paper_pair(pairs, "efficiency") == [(3, 1, "efficiency")]
    only_correct = [p for p in pairs if p[2] == "correctness"]
    assert codedpo_paper_pair(only_correct, "efficiency") == [(0, 2, "correctness")]  # falls back, still one
    assert codedpo_paper_pair([], "correctness") == []


def test_codedpo_split_is_seeded_and_near_the_share():
    kinds = [codedpo_split(f"t/{i}", 0, 0.3) for i in range(2000)]
    assert kinds == [codedpo_split(f"t/{i}", 0, 0.3) for i in range(2000)]
    assert 0.26 < kinds.count("efficiency") / 2000 < 0.34
    assert kinds != [codedpo_split(f"t/{i}", 1, 0.3) for i in range(2000)]
    assert {codedpo_split("x", 0, 0.0), codedpo_split("x", 0, 1.0)} == {"correctness", "efficiency"}


def test_codedpo_export_one_pair_per_instruction_disjoint_kinds():
    rng = np.random.default_rng(0)
    rows = []
    for k in range(40):
        n, m = 15, 6
        matrix = (rng.random((n, m)) < 0.6).astype(int).tolist()
        rows.append({
            "task_id": f"seed/{k}", "samples": [f"def f():\n    return {i}\n" for i in range(n)],
            "gen_tests": [f"assert f() == {j}" for j in range(m)], "gen_exec_matrix": matrix,
            "runtime_ns": [float(v) for v in rng.integers(100, 10_000, n)],
        })  # fmt: skip
    ds = Dataset.from_list(rows)
    everything = build_pairs(ds, PairsConfig(policy="codedpo", select="all"))
    assert max(len(p) for p in everything["pairs"]) > 20  # the candidates form keeps every valid pair
    paper = build_pairs(ds, PairsConfig(policy="codedpo", efficiency_share=0.5, seed=3))
    assert all(len(p) <= 1 for p in paper["pairs"])
    kinds = {row["task_id"]: row["pairs"][0]["kind"] for row in paper if row["pairs"]}
    assert len(kinds) == 40 and set(kinds.values()) == {"correctness", "efficiency"}
    for row in paper:  # each entry is the first of its kind in the full list: (c_top, c_low) / (c_fast, c_slow)
        full = next(r["pairs"] for r in everything if r["task_id"] == row["task_id"])
        assert row["pairs"][0] == next(p for p in full if p["kind"] == row["pairs"][0]["kind"])
    again = build_pairs(ds, PairsConfig(policy="codedpo", efficiency_share=0.5, seed=3))
    assert again["pairs"] == paper["pairs"]


def test_dstc_pair_with_the_same_code_on_both_sides():
    # one code passes t0 and fails t1: c* = c' = 0, t* = 0, t' = 1 — (c*, t*) and (c', t') still differ
    pairs, info = dstc_pairs(np.array([[1, 0]], bool))
    assert pairs == [(0, 0, "dstc")]
    assert info == {"chosen_code": 0, "chosen_test": 0, "rejected_test": 1, "rejected_code": 0}
    with pytest.raises(AssertionError):
        assert dstc_pairs(np.zeros((2, 2), bool))[0]  # no feasible chosen: no DPO pair
