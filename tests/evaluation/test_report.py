import json

import pytest
from datasets import Dataset

from codepref.errors import DataError
from codepref.evaluation import compare_runs, run_metrics, write_report


def run(rows):
    return Dataset.from_list([{"task_id": t, "samples": s, "passed": p, "runtime_ns": r} for t, s, p, r in rows])


BASE = run(
    [
        ("p1", ["aaaa", "b", "def f(:"], [True, False, False], [100.0, None, None]),
        ("p2", ["cccc", "dd", "ee"], [True, True, False], [200.0, 400.0, None]),
        ("p3", ["x", "y", "z"], [False, False, False], [None, None, None]),
    ]
)
DPO = run(
    [
        ("p1", ["aa", "bb", "cc"], [True, True, False], [50.0, 70.0, None]),
        ("p2", ["cc", "d", "e"], [True, False, False], [400.0, None, None]),
        ("p3", ["x", "y", "z"], [True, False, False], [10.0, None, None]),
    ]
)


def test_run_metrics():
    m = run_metrics(BASE, ks=(1, 2, 3, 10))
    assert m["problems"] == 3 and m["samples"] == 9 and m["solved"] == 2
    assert m["pass@k"]["1"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert "10" not in m["pass@k"]  # n=3 < 10
    assert m["compile_rate"] == pytest.approx(8 / 9)
    assert m["median_length"] == 4.0  # aaaa, cccc, dd
    assert m["median_runtime_ns"] == 200.0


def test_compare_on_common_problems():
    cmp = compare_runs({"base": BASE, "dpo": DPO}, base="base", ks=(1, 3))
    assert cmp["common_problems"] == 2  # p3 is solved by dpo only
    b, d = cmp["models"]["base"], cmp["models"]["dpo"]
    assert b["median_runtime_common"] == 200.0 and d["median_runtime_common"] == 70.0  # 50, 70, 400
    assert d["ratios_to_base"]["runtime"] == pytest.approx(70 / 200)
    assert d["ratios_to_base"]["length"] == pytest.approx(2.0 / 4.0)  # dpo: aa, bb, cc → 2; base: 4
    # best@3 = fastest passing among all 3: base p1 100, p2 200 → median 150; dpo p1 50, p2 400 → 225
    assert b["best@k"]["3"] == 150.0 and d["best@k"]["3"] == 225.0
    # per-problem medians: base p1 100, p2 300; dpo p1 60, p2 400 → speed-ups 100/60, 300/400
    assert d["speedup"]["speedup"] == pytest.approx((100 / 60 + 300 / 400) / 2)
    assert d["speedup"]["optimised"] == 0.5
    with pytest.raises(DataError, match="base run 'nope'"):
        compare_runs({"base": BASE}, base="nope")


def test_report_files_are_valid(tmp_path):
    cmp = compare_runs({"base": BASE, "dpo": DPO}, base="base", ks=(1, 3))
    report = write_report(cmp, tmp_path)
    text = report.read_text()
    assert "| dpo |" in text and "pass@1" in text and "![pass_at_k](pass_at_k.png)" in text
    for png in ("pass_at_k.png", "ratios_to_base.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert json.loads((tmp_path / "comparison.json").read_text())["base"] == "base"
