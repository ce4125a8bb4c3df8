"""Issue 18: exports as the papers define them (DSTC's KTO rows and training prompt, Code-Optimise's SFT pool)."""

import re

from datasets import Dataset

from codepref.export import DSTC_TEMPLATE, ExportConfig, export
from codepref.pairs import PairsConfig, build_pairs
from codepref.provenance import with_provenance
from codepref.sampling.prompts import DSTC_EXAMPLE, dstc_prompt

ROW = {
    "task_id": "t/1",
    "prompt": "def f(x):\n",
    "instruction": "Write f, adding one.\nThe main function name is `f`.",
    "entry_point": "f",
    "tests": ["assert f(1) == 2"],
    "gen_tests": ["assert f(0) == 1", "assert f(2) == 3"],
    "completions": ["A", "B", "C", "D"],
    "samples": ["def f(x):\n    return x + 1", "def f(x):\n    return 2 * x", "def f(x): return x + 1", "oops"],
    "passed": [True, False, True, False],
    "runtime_ns": [30.0, None, 10.0, None],
}


def dstc(gen, chat=True):
    ds = Dataset.from_list([{**ROW, "gen_exec_matrix": gen}])
    ds = with_provenance(ds, "sample", {"chat": chat, "target": "tests", "test_prompt": "dstc"})
    return build_pairs(ds, PairsConfig(policy="dstc"))


def test_dstc_kto_keeps_a_feasible_chosen_without_a_rejected():
    ds = dstc([[0, 0], [0, 0], [0, 0], [0, 0]])  # every code passes every test: no rejected test exists
    assert ds[0]["pairs"] == [] and ds[0]["minimax"]["rejected_code"] is None
    assert len(export(ds, ExportConfig(format="preference"))) == 0  # DPO needs both sides
    kto = export(ds, ExportConfig(format="kto", style="standard"))
    mm = ds[0]["minimax"]
    chosen = DSTC_TEMPLATE.format(code=ROW["samples"][mm["chosen_code"]], test=ROW["gen_tests"][mm["chosen_test"]])
    assert kto.to_list() == [{"task_id": "t/1", "prompt": "Write f, adding one.", "completion": chosen, "label": True}]
    nothing = dstc([[1, 1], [1, 1], [1, 1], [1, 1]])  # no feasible chosen: filtered for KTO too
    assert len(export(nothing, ExportConfig(format="kto"))) == 0


def test_dstc_pair_with_one_code_on_both_sides_is_exported():
    ds = Dataset.from_list([{**ROW, "samples": ROW["samples"][:1], "completions": ["A"], "passed": [True],
                             "runtime_ns": [1.0], "gen_exec_matrix": [[0, 1]]}])  # fmt: skip
    out = export(build_pairs(ds, PairsConfig(policy="dstc")), ExportConfig(format="preference", style="standard"))
    assert len(out) == 1
    assert out[0]["chosen"] == DSTC_TEMPLATE.format(code=ROW["samples"][0], test="assert f(0) == 1")
    assert out[0]["rejected"] == DSTC_TEMPLATE.format(code=ROW["samples"][0], test="assert f(2) == 3")


def test_dstc_training_prompt_drops_the_entry_point_and_the_scaffold():
    ds = dstc([[0, 0], [0, 1], [1, 1], [0, 1]])
    generation = dstc_prompt(ROW, chat=True)
    assert "`f`" in generation[1]["content"] and "Example 1" in generation[1]["content"]  # sampling names it
    out = export(ds, ExportConfig(format="preference"))
    assert out[0]["prompt"] == [{"role": "user", "content": "Write f, adding one."}]
    std = export(dstc([[0, 0], [0, 1], [1, 1], [0, 1]], chat=False), ExportConfig(format="kto"))
    assert all("`f`" not in r["prompt"] and "Example" not in r["prompt"] for r in std)


def test_dstc_one_shot_example_passes_its_own_tests():
    blocks = re.findall(r"```python\n(.*?)```", DSTC_EXAMPLE, re.S)
    implementation, tests = blocks
    namespace: dict = {}
    exec(implementation, namespace)  # our own constant, not model output
    for line in tests.strip().splitlines():
        exec(line, namespace)
    assert len(tests.strip().splitlines()) >= 3


def test_sft_pool_comes_from_filtered_problems_only():
    kept = {**ROW}  # 2 passing (0: 30 ns, 2: 10 ns), 2 failing
    unfiltered = {**ROW, "task_id": "t/2", "passed": [True, True, True, True], "runtime_ns": [3.0, 2.0, 1.0, 4.0]}
    lonely = {**ROW, "task_id": "t/3", "passed": [True, False, False, False], "runtime_ns": [1.0, None, None, None]}
    ds = Dataset.from_list([kept, unfiltered, lonely])
    sft = export(ds, ExportConfig(format="sft", top_percent=100, style="standard"))
    assert [(r["task_id"], r["completion"]) for r in sft] == [("t/1", "C"), ("t/1", "A")]
    everything = export(
        ds, ExportConfig(format="sft", top_percent=100, style="standard", min_passing=1, min_failing=0)
    )
    assert {r["task_id"] for r in everything} == {"t/1", "t/2", "t/3"}
