import json

import pytest
from datasets import Dataset

from codepref.errors import DataError
from codepref.problems import ProblemsConfig, load_problems

EVALPLUS_TEST = """
import math
def assertion(out, exp, atol):
    assert out == exp
inputs = [[1, 2], [3, 4]]
results = [3, 7]
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion(add(*inp), exp, 0)
"""


HE_PLUS_TEST = """import math
def assertion(out, exp, atol):
    assert out == exp

def check(candidate):
    inputs = [[1, 2], [3, 4]]
    results = [3, 7]
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, 0)
"""


def test_humaneval_plus_from_a_hub_style_folder(tmp_path):
    root = tmp_path / "heplus"
    (root / "data").mkdir(parents=True)
    rows = [
        {
            "task_id": "HumanEval/0",
            "prompt": "def add(a, b):\n",
            "canonical_solution": "    return a + b\n",
            "entry_point": "add",
            "test": HE_PLUS_TEST,
        }
    ]
    Dataset.from_list(rows).to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    row = load_problems(ProblemsConfig(source="humaneval-plus", path=str(root)))[0]
    assert row["task_id"] == "humaneval-plus/0"
    assert len(row["tests"]) == 1 and row["tests"][0].startswith("inputs = [[1, 2], [3, 4]]")
    assert "def assertion" in row["test_setup"] and row["test_setup"].endswith("candidate = add\n")
    for program, ok in ((row["prompt"] + row["canonical_solution"], True), (row["prompt"] + "    return 0\n", False)):
        ns: dict = {}
        try:
            exec(program + "\n" + row["test_setup"] + "\n" + row["tests"][0], ns)  # trusted fixture code
            passed = True
        except AssertionError:
            passed = False
        assert passed is ok


def test_mbpp_plus_keeps_the_evalplus_program_as_one_unit(tmp_path):
    path = tmp_path / "mbppplus.jsonl"
    raw = {
        "task_id": 11,
        "prompt": "Write add.",
        "code": "def add(a, b):\n    return a + b",
        "test_imports": ["import math"],
        "test_list": ["assert add(1, 2) == 3"],
        "test": EVALPLUS_TEST,
    }
    path.write_text(json.dumps(raw) + "\n")
    row = load_problems(ProblemsConfig(source="mbpp-plus", path=str(path)))[0]
    assert row["task_id"] == "mbpp-plus/11" and row["tests"] == [EVALPLUS_TEST]
    assert row["test_setup"] == "import math" and row["entry_point"] == "add"
    ns: dict = {}
    exec(row["canonical_solution"] + "\n" + row["test_setup"] + "\n" + row["tests"][0], ns)
    path.write_text(json.dumps(dict(raw, test="")) + "\n")
    with pytest.raises(DataError, match="'mbpp-plus/11'.*field 'test'"):
        load_problems(ProblemsConfig(source="mbpp-plus", path=str(path)))


def test_codecontests_hidden_and_public_tests(tmp_path):
    path = tmp_path / "cc.jsonl"
    rows = [
        {
            "name": "1548_A. Web of Lies",
            "description": "Read n, print 2n.",
            "public_tests": {"input": ["1\n"], "output": ["2\n"]},
            "private_tests": {"input": ["5\n"], "output": ["10\n"]},
            "generated_tests": {"input": ["7\n", "0\n"], "output": ["14\n", "0\n"]},
            "solutions": {"language": [2, 3], "solution": ["int main(){}", "print(2 * int(input()))"]},
        },
        {
            "name": "2_B",
            "description": "Echo.",
            "public_tests": {"input": ["x\n"], "output": ["x\n"]},
            "private_tests": {"input": [], "output": []},
            "generated_tests": {"input": [], "output": []},
            "solutions": {"language": [], "solution": []},
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_problems(ProblemsConfig(source="codecontests", path=str(path)))
    a, b = ds[0], ds[1]
    assert a["task_id"] == "codecontests/1548_A" and a["tests"] == []
    assert a["io_tests"] == {"input": ["5\n", "7\n", "0\n"], "output": ["10\n", "14\n", "0\n"]}
    assert a["public_io_tests"] == {"input": ["1\n"], "output": ["2\n"]}
    assert a["canonical_solution"] == "print(2 * int(input()))"
    assert "Read n, print 2n." in a["instruction"] and "standard input" in a["prompt"]
    assert b["io_tests"]["input"] == ["x\n"] and b["canonical_solution"] is None  # public tests as the only tests
    bad = dict(rows[0], private_tests={"input": ["1\n"], "output": []})
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(DataError, match="'codecontests/1548_A'.*field 'private_tests'"):
        load_problems(ProblemsConfig(source="codecontests", path=str(path)))
