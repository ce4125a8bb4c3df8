"""The execute dataset transform on top of the sandboxed pool."""

import pytest
from datasets import Dataset

from codepref.errors import DataError
from codepref.execution import ExecuteConfig, Outcome, WorkerPool, execute
from codepref.provenance import get_provenance

P, F, E, S = int(Outcome.PASS), int(Outcome.FAIL), int(Outcome.ERROR), int(Outcome.SYNTAX)

ROWS = [
    {
        "task_id": "t/add",
        "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
        "test_setup": "",
        "io_tests": None,
        "gen_tests": ["assert add(0, 0) == 0"],
        "samples": [
            "def add(a, b):\n    return a + b\n",
            "def add(a, b):\n    return a - b\n",
            "def add(a, b)\n    return a + b\n",
            "import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n",
        ],
    },
    {
        "task_id": "t/double",
        "tests": [],
        "test_setup": "",
        "io_tests": {"input": ["2\n", "5\n"], "output": ["4\n", "10\n"]},
        "gen_tests": [],
        "samples": ["print(int(input()) * 2)\n", "print(int(input()) + 2)\n"],
    },
]


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(ExecuteConfig(timeout=3.0, slots=2)) as p:
        yield p


def test_matrices_passed_and_stderr(pool, tmp_path):
    out = execute(Dataset.from_list(ROWS), ExecuteConfig(shard_size=1), pool=pool)
    a, b = out[0], out[1]
    assert a["exec_matrix"] == [[P, P], [F, F], [S, S], [E, E]]  # exit(0) before the asserts does not pass
    assert a["passed"] == [True, False, False, False]
    assert a["gen_exec_matrix"] == [[P], [P], [S], [E]]
    assert a["exec_stderr"][0] == "" and "SyntaxError" in a["exec_stderr"][2]
    assert b["exec_matrix"] == [[P, P], [P, F]] and b["passed"] == [True, False]  # 2 + 2 == 2 * 2
    assert str(out.features["exec_matrix"]) == "List(List(Value('int8')))"
    record = get_provenance(out)["execute"]
    assert record["timeout"] == 3.0 and "level" in record["isolation"]
    resumed = execute(Dataset.from_list(ROWS), ExecuteConfig(shard_size=1), pool=pool, work_dir=tmp_path)
    again = execute(Dataset.from_list(ROWS), ExecuteConfig(shard_size=1), pool=pool, work_dir=tmp_path)
    assert resumed.to_list() == again.to_list() == out.to_list()


def test_ground_truth_only_and_errors(pool):
    out = execute(Dataset.from_list(ROWS[:1]), ExecuteConfig(tests="ground_truth"), pool=pool)
    assert "gen_exec_matrix" not in out.column_names
    with pytest.raises(DataError, match="no 'samples' column"):
        execute(Dataset.from_list([{"task_id": "x", "tests": []}]), pool=pool)
    bad = [dict(ROWS[0], samples="not a list")]
    with pytest.raises(DataError, match="'t/add'.*field 'samples'"):
        execute(Dataset.from_list(bad), pool=pool)
