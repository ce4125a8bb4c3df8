import pytest
from datasets import Dataset

from codepref.errors import ConfigError, DataError
from codepref.export import DSTC_TEMPLATE, ExportConfig, export
from codepref.pairs import PairsConfig, build_pairs
from codepref.provenance import get_provenance, with_provenance

ROW = {
    "task_id": "t/1",
    "prompt": "def f(x):\n",
    "instruction": "Write f.",
    "tests": ["assert f(1) == 2"],
    "gen_tests": ["assert f(0) == 1", "assert f(2) == 3"],
    "completions": ["A", "B", "C", "D"],
    "samples": ["def f(x):\n    return x + 1", "def f(x):\n    return 2 * x", "def f(x): return x + 1", "oops"],
    "passed": [True, False, True, False],
    "runtime_ns": [30.0, None, 10.0, None],
}


def paired(policy="code-optimise", chat=True, **row):
    ds = Dataset.from_list([{**ROW, **row}])
    ds = with_provenance(ds, "sample", {"chat": chat, "target": "code"})
    return build_pairs(ds, PairsConfig(policy=policy))


def test_preference_conversational_and_standard():
    ds = paired()
    out = export(ds, ExportConfig(format="preference"))
    # pvf: (2,1) (2,3) (0,1) (0,3); qvs: (2,0)
    assert len(out) == 5 and out.column_names == ["task_id", "prompt", "chosen", "rejected", "kind"]
    first = out[0]
    assert first["prompt"] == [{"role": "user", "content": "Write f."}]
    assert first["chosen"] == [{"role": "assistant", "content": "C"}]
    assert first["rejected"] == [{"role": "assistant", "content": "B"}]
    std = export(ds, ExportConfig(format="preference", style="standard", kinds=["qvs"]))
    assert std.to_list() == [{"task_id": "t/1", "prompt": "Write f.", "chosen": "C", "rejected": "A", "kind": "qvs"}]
    prog = export(ds, ExportConfig(format="preference", response="program", kinds=["qvs"], style="standard"))
    assert prog[0]["chosen"] == "```python\ndef f(x): return x + 1\n```"
    assert len(export(ds, ExportConfig(format="reward"))) == 5
    assert len(export(ds, ExportConfig(max_pairs_per_problem=2))) == 2
    assert get_provenance(out)["export"]["format"] == "preference"
    assert get_provenance(out)["sample"]["chat"] is True  # earlier stages carried over


def test_completion_model_prompt_is_the_raw_prompt():
    out = export(paired(chat=False), ExportConfig(format="preference", kinds=["qvs"]))
    assert out[0]["prompt"] == "def f(x):\n" and out[0]["chosen"] == "C"


def test_kto_labels_each_sample_once():
    out = export(paired(), ExportConfig(format="kto", style="standard"))
    assert sorted((r["completion"], r["label"]) for r in out) == [("A", True), ("B", False), ("C", True), ("D", False)]


def test_sft_top_percent():
    ds = paired()
    assert [r["completion"] for r in export(ds, ExportConfig(format="sft", top_percent=25, style="standard"))] == ["C"]
    assert [r["completion"] for r in export(ds, ExportConfig(format="sft", top_percent=100, style="standard"))] == [
        "C",
        "A",
    ]


def test_candidates_keep_every_pair():
    out = export(paired(), ExportConfig(format="candidates", style="standard", top_percent=100))
    row = out[0]
    assert row["responses"] == ["A", "B", "C", "D"]
    assert len(row["pairs"]) == 5 and row["sft"] == [2, 0]


def test_dstc_concatenation_and_kto():
    gen = [[0, 0], [0, 1], [1, 1], [0, 1]]  # codes × generated tests
    ds = paired(policy="dstc", gen_exec_matrix=gen)
    mm = ds[0]["minimax"]
    assert mm == {"chosen_code": 0, "chosen_test": 1, "rejected_test": 0, "rejected_code": 2}
    out = export(ds, ExportConfig(format="preference", style="standard"))
    assert out[0]["chosen"] == DSTC_TEMPLATE.format(code=ROW["samples"][0], test="assert f(2) == 3")
    assert out[0]["rejected"] == DSTC_TEMPLATE.format(code=ROW["samples"][2], test="assert f(0) == 1")
    kto = export(ds, ExportConfig(format="kto", style="standard"))
    assert [r["label"] for r in kto] == [True, False]


def test_errors():
    with pytest.raises(ConfigError, match="unknown export format"):
        ExportConfig(format="csv")
    with pytest.raises(DataError, match="needs the 'pairs' column"):
        export(Dataset.from_list([ROW]), ExportConfig(format="preference"))


def test_empty_exports_keep_their_columns():
    ds = paired(passed=[False, False, False, False])  # nothing passes: no pairs
    for fmt in ("preference", "kto", "sft", "candidates"):
        out = export(ds, ExportConfig(format=fmt))
        assert len(out) == 0 and "prompt" in out.column_names and "task_id" in out.column_names
