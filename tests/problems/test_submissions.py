"""IotaCode's preference data: CodeContests' own judged submissions (OK = preferred, any other = dispreferred)."""

import json
from pathlib import Path

import pytest
from datasets import Dataset

from codepref.errors import DataError
from codepref.pairs import PairsConfig, build_pairs
from codepref.pipeline import run_pipeline
from codepref.problems import ProblemsConfig, load_problems
from codepref.problems.submissions import SubmissionsConfig, submissions

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "recipes" / "iotacode" / "codecontests-small.jsonl"


def _raw(**extra):
    row = {
        "name": "1A. Double",
        "description": "Print twice the integer n.",
        "public_tests": {"input": ["2\n"], "output": ["4\n"]},
        "private_tests": {"input": ["5\n"], "output": ["10\n"]},
        "generated_tests": {"input": [], "output": []},
        "solutions": {"language": [3, 2, 3],
                      "solution": ["print(2*int(input()))\n", "int main(){}", "print(int(input())*2)\n"]},
        "incorrect_solutions": {"language": [3, 1], "solution": ["print(int(input())+2)\n", "print 2*input()\n"]},
    }  # fmt: skip
    return {**row, **extra}


def test_python3_submissions_become_samples_with_their_verdicts(tmp_path):
    path = tmp_path / "cc.jsonl"
    path.write_text(json.dumps(_raw()) + "\n")
    problems = load_problems(ProblemsConfig(source="codecontests", path=str(path)))
    assert problems[0]["solutions"] == ["print(2*int(input()))\n", "print(int(input())*2)\n"]  # Python 3 only
    assert problems[0]["incorrect_solutions"] == ["print(int(input())+2)\n"]
    out = submissions(problems)[0]
    assert out["samples"] == ["print(2*int(input()))\n", "print(int(input())*2)\n", "print(int(input())+2)\n"]
    assert out["passed"] == [True, True, False]
    capped = submissions(problems, SubmissionsConfig(max_correct=1, seed=3))[0]
    assert capped["passed"] == [True, False] and capped["samples"][0] in out["samples"][:2]
    pairs = build_pairs(submissions(problems), PairsConfig(policy="iotacode", negatives="levenshtein"))[0]["pairs"]
    assert [(p["chosen"], p["rejected"], p["kind"]) for p in pairs] == [(0, 2, "closest"), (1, 2, "closest")]


def test_bad_submissions_name_row_and_field(tmp_path):
    path = tmp_path / "cc.jsonl"
    path.write_text(json.dumps(_raw(solutions={"language": [3, 3], "solution": ["x"]})) + "\n")
    with pytest.raises(DataError, match="solutions"):
        load_problems(ProblemsConfig(source="codecontests", path=str(path)))
    with pytest.raises(DataError, match="load CodeContests problems"):
        submissions(Dataset.from_list([{"task_id": "t", "prompt": "p"}]))


def test_fixture_verdicts_agree_with_the_sandbox():
    """The shipped fixture's OK / not-OK labels are what the judge says on its hidden tests."""
    from codepref.execution import ExecuteConfig, execute

    ds = submissions(load_problems(ProblemsConfig(source="codecontests", path=str(FIXTURE))))
    labelled = ds["passed"]
    judged = execute(ds, ExecuteConfig(timeout=5.0, slots=2))["passed"]
    assert judged == labelled and all(any(p) and not all(p) for p in labelled)


def test_iotacode_small_pipeline_yields_pairs_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEPREF_HUB", str(tmp_path / "store"))
    monkeypatch.chdir(ROOT)
    out = run_pipeline(str(ROOT / "recipes" / "iotacode" / "pipeline-small.yaml"), output_dir=tmp_path / "run")
    preference = Dataset.load_from_disk(str(out["preference"]))
    assert len(preference) == 9  # one pair per correct submission (3 + 2 + 2 + 2)
    assert set(preference["kind"]) <= {"closest", "random"}
