"""codepref's offline, sandboxed drop-in for evaluate's code_eval: same inputs and pass@k, no forged passes."""

import subprocess
import sys

import numpy as np
import pytest

evaluate = pytest.importorskip("evaluate")

from codepref.evaluation import EVALUATE_METRIC  # noqa: E402

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
HUMANEVAL_STYLE = (
    "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(0, 0) == 0\n\ncheck(add)\n"
)
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a * b\n"
BROKEN = "def add(a, b)\n    return a + b\n"
LOOPS = "def add(a, b):\n    while True:\n        pass\n"
# passes code_eval: candidate and test share one namespace and == is the candidate's to define
ALWAYS_EQUAL = "class _Any:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return _Any()\n"


def code_eval_estimator(n: int, c: int, k: int) -> float:
    """evaluate's code_eval `estimate_pass_at_k` for one problem, as published."""
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(EVALUATE_METRIC)  # a local script: no Hub, no HF_ALLOW_CODE_EVAL


def test_same_pass_at_k_as_code_eval_on_benign_programs(metric):
    predictions = [[RIGHT, WRONG, BROKEN, RIGHT], [WRONG, WRONG, RIGHT, LOOPS], [RIGHT, RIGHT, RIGHT, RIGHT]]
    references = [ADD_TESTS, HUMANEVAL_STYLE, ADD_TESTS]
    correct = [2, 1, 4]  # what each candidate list holds, by construction
    pass_at_k, results = metric.compute(predictions=predictions, references=references, k=[1, 2, 4, 5], timeout=2.0)
    for k in (1, 2, 4):
        assert pass_at_k[f"pass@{k}"] == pytest.approx(np.mean([code_eval_estimator(4, c, k) for c in correct]))
    assert "pass@5" not in pass_at_k  # k above the candidates per problem is skipped, as code_eval does
    assert [r["passed"] for _, r in results[0]] == [True, False, False, True]
    assert results[1][3][1]["result"] == "timed out" and results[0][1][1]["result"].startswith("failed")
    assert [cid for cid, _ in results[2]] == [0, 1, 2, 3]


def test_a_candidate_cannot_forge_its_pass(metric, tmp_path):
    program = tmp_path / "code_eval_way.py"
    program.write_text(ALWAYS_EQUAL + "\n" + ADD_TESTS)  # code_eval: exec(candidate + "\n" + test) in one process
    forged = subprocess.run([sys.executable, str(program)], capture_output=True, timeout=30)
    assert forged.returncode == 0  # code_eval would count it as passed
    pass_at_k, results = metric.compute(predictions=[[ALWAYS_EQUAL]], references=[ADD_TESTS], k=[1])
    assert pass_at_k == {"pass@1": 0.0} and results[0][0][1]["passed"] is False
    assert results[0][0][1]["trust"] == "judged"  # the verdict was decided outside the candidate's process
