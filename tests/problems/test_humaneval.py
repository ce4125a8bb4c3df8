import gzip
import json

import pytest

from codepref.errors import DataError
from codepref.problems import PROBLEM_COLUMNS, load_humaneval, load_problems, split_check_function


def test_all_164_problems_in_schema():
    ds = load_problems("humaneval")
    assert len(ds) == 164
    assert ds.column_names == PROBLEM_COLUMNS
    row = ds[0]
    assert row["task_id"] == "humaneval/0"
    assert row["entry_point"] == "has_close_elements"
    assert row["prompt"].startswith("from typing import List")
    assert "```python\n" + row["prompt"] in row["instruction"]
    assert row["test_setup"].endswith("candidate = has_close_elements\n")
    assert row["io_tests"] is None
    # check() of HumanEval/0 holds 7 asserts: one unit each.
    assert len(row["tests"]) == 7
    assert all(t.startswith("assert candidate(") for t in row["tests"])
    assert sum(len(t) for t in ds["tests"]) > 164 * 3


def test_units_reproduce_check_semantics():
    """Every unit passes with the canonical solution; the units together equal check()."""
    ds = load_problems("humaneval", task_ids=["0", "32", "53"])
    for row in ds:
        program = row["prompt"] + row["canonical_solution"]
        for unit in row["tests"]:
            ns: dict = {}
            exec(program + "\n" + row["test_setup"] + "\n" + unit, ns)  # trusted reference code
        broken = row["prompt"] + "    return None\n"
        failures = 0
        for unit in row["tests"]:
            ns = {}
            try:
                exec(broken + "\n" + row["test_setup"] + "\n" + unit, ns)
            except Exception:
                failures += 1
        assert failures >= 1


def test_split_repeats_preceding_statements_and_drops_trivial_asserts():
    src = (
        "METADATA = {'author': 'x'}\n"
        "import math\n\n"
        "def helper(v):\n    return v * 2\n\n"
        "def check(candidate):\n"
        "    '''docstring'''\n"
        "    x = 3\n"
        "    assert candidate(x) == 6, 'first'\n"
        "    assert True, 'This prints if this assert fails (good for debugging!)'\n"
        "    for i in range(3):\n"
        "        assert candidate(i) == helper(i)\n"
    )
    setup, units = split_check_function(src, entry_point="double")
    assert setup == "METADATA = {'author': 'x'}\nimport math\ndef helper(v):\n    return v * 2\ncandidate = double\n"
    assert units == [
        "x = 3\nassert candidate(x) == 6, 'first'",
        "x = 3\nfor i in range(3):\n    assert candidate(i) == helper(i)",
    ]


def test_split_without_check_or_asserts_is_an_error():
    with pytest.raises(ValueError, match="no function 'check'"):
        split_check_function("x = 1\n", entry_point="f")
    with pytest.raises(ValueError, match="is empty"):
        split_check_function('def check(candidate):\n    """only a docstring"""\n', entry_point="f")
    # no assert statement (EvalPlus calls an assertion() helper): the whole body is one unit
    _, units = split_check_function(
        "def check(candidate):\n    for x in [1]:\n        helper(candidate(x))\n", entry_point="f"
    )
    assert units == ["for x in [1]:\n    helper(candidate(x))"]


def test_malformed_humaneval_file_names_row_and_field(tmp_path):
    good = {
        "task_id": "HumanEval/0",
        "prompt": "def f():\n",
        "canonical_solution": "    return 1\n",
        "test": "def check(candidate):\n    assert candidate() == 1\n",
        "entry_point": "f",
    }
    bad = dict(good, task_id="HumanEval/1", test="def check(candidate):\n    assert (\n")
    path = tmp_path / "he.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as e:
        load_humaneval(path)
    assert "row 1" in str(e.value) and "'HumanEval/1'" in str(e.value) and "field 'test'" in str(e.value)

    missing = dict(good)
    del missing["entry_point"]
    path.write_bytes(gzip.compress((json.dumps(missing) + "\n").encode()))
    with pytest.raises(DataError, match="field 'entry_point'"):
        load_humaneval(path)


def test_select_by_task_ids_and_limit():
    ds = load_problems("humaneval", task_ids=["humaneval/7", "22", "27"])
    assert ds["task_id"] == ["humaneval/7", "humaneval/22", "humaneval/27"]
    assert len(load_problems("humaneval", limit=5)) == 5
    with pytest.raises(DataError, match="'999' is not in"):
        load_problems("humaneval", task_ids=["999"])
