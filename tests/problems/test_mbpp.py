import json

import pytest
from datasets import Dataset

from codepref.errors import DataError
from codepref.problems import ProblemsConfig, load_mbpp, load_problems
from codepref.problems.mbpp import FEW_SHOT, entry_point_of, few_shot_prompt


def mbpp_raw(task_id, name="add", tests=None, setup=""):
    return {
        "task_id": task_id,
        "text": f"Write a function {name} that adds two numbers.",
        "code": f"def {name}(a, b):\n    return a + b",
        "test_list": tests or [f"assert {name}(1, 2) == 3", f"assert {name}(0, 0) == 0", f"assert {name}(-1, 1) == 0"],
        "test_setup_code": setup,
        "challenge_test_list": [],
    }


ROWS = [
    mbpp_raw(5, "a5"),
    mbpp_raw(11, "a11", setup="import math"),
    mbpp_raw(520, "a520"),
    mbpp_raw(700, "a700"),
    mbpp_raw(974, "a974"),
]


@pytest.fixture
def mbpp_jsonl(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_local_jsonl_splits_by_paper_task_id_ranges(mbpp_jsonl):
    assert load_mbpp("test", source=str(mbpp_jsonl))["task_id"] == ["mbpp/11"]
    assert load_mbpp("train", source=str(mbpp_jsonl))["task_id"] == ["mbpp/700", "mbpp/974"]
    assert load_mbpp("validation", source=str(mbpp_jsonl))["task_id"] == ["mbpp/520"]
    assert load_mbpp("prompt", source=str(mbpp_jsonl))["task_id"] == ["mbpp/5"]
    assert len(load_mbpp("all", source=str(mbpp_jsonl))) == 5
    assert load_mbpp("train+validation", source=str(mbpp_jsonl))["task_id"] == ["mbpp/700", "mbpp/974", "mbpp/520"]


def test_row_contents(mbpp_jsonl):
    row = load_problems(ProblemsConfig(source="mbpp", split="test", path=str(mbpp_jsonl)))[0]
    assert row["tests"] == ROWS[1]["test_list"]
    assert row["test_setup"] == "import math"
    assert row["entry_point"] == "a11"
    assert row["canonical_solution"] == ROWS[1]["code"]
    assert row["prompt"].endswith(
        "You are an expert Python programmer, and here is your task: Write a function a11 that adds two numbers. "
        "Your code should pass these tests:\n\nassert a11(1, 2) == 3\nassert a11(0, 0) == 0\nassert a11(-1, 1) == 0\n"
        "[BEGIN]\n"
    )
    assert "The function must be named `a11`" in row["instruction"]
    assert "assert a11(1, 2) == 3" in row["instruction"]


def test_standard_three_shot_prompt():
    prompt = few_shot_prompt("Do X.", ["assert x() == 1"])
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3
    assert prompt.startswith(
        "You are an expert Python programmer, and here is your task: Write a function to find "
        "the similar elements from the given two tuple lists. Your code should pass these tests:"
    )
    for _, code, tests in FEW_SHOT:
        assert f"[BEGIN]\n{code}\n[DONE]\n" in prompt
        assert "\n".join(tests) in prompt


def test_parquet_file(tmp_path):
    path = tmp_path / "mbpp.parquet"
    Dataset.from_list(ROWS).to_parquet(str(path))
    assert load_mbpp("train", source=str(path))["task_id"] == ["mbpp/700", "mbpp/974"]


def _hub_folder(tmp_path):
    """A folder laid out like the Hub repo: configs full/sanitized with parquet shards per split."""
    root = tmp_path / "mbpp-hub"
    (root / "full").mkdir(parents=True)
    (root / "sanitized").mkdir()
    Dataset.from_list([ROWS[1]]).to_parquet(str(root / "full" / "test-00000-of-00001.parquet"))
    Dataset.from_list([ROWS[3], ROWS[4]]).to_parquet(str(root / "full" / "train-00000-of-00001.parquet"))
    sanitized = [
        {
            "source_file": "x",
            "task_id": 11,
            "prompt": "Write a function s11.",
            "code": "def s11():\n  return 1",
            "test_imports": ["import math", "import re"],
            "test_list": ["assert s11() == 1"],
        }
    ]
    Dataset.from_list(sanitized).to_parquet(str(root / "sanitized" / "test-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: full\n  data_files:\n  - split: train\n    path: full/train-*\n"
        "  - split: test\n    path: full/test-*\n"
        "- config_name: sanitized\n  data_files:\n  - split: test\n    path: sanitized/test-*\n---\n# MBPP\n"
    )
    return root


def test_hub_style_folder_full_and_sanitized(tmp_path):
    root = _hub_folder(tmp_path)
    full = load_problems("mbpp", split="train", path=str(root))
    assert full["task_id"] == ["mbpp/700", "mbpp/974"]
    san = load_problems("mbpp-sanitized", split="test", path=str(root))
    row = san[0]
    assert row["task_id"] == "mbpp/11" and row["entry_point"] == "s11"
    assert row["test_setup"] == "import math\nimport re"
    assert "Write a function s11." in row["prompt"]
    assert len(load_problems("mbpp", split="all", path=str(root))) == 3


def test_malformed_rows_name_row_and_field(tmp_path):
    bad = [mbpp_raw(11), dict(mbpp_raw(12), test_list=[]), mbpp_raw(13)]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(DataError) as e:
        load_mbpp("all", source=str(path))
    msg = str(e.value)
    assert "row 1" in msg and "'mbpp/12'" in msg and "field 'test_list'" in msg

    bad = [dict(mbpp_raw(11), test_list=["assert add(1, 2 == 3"])]
    path.write_text(json.dumps(bad[0]) + "\n")
    with pytest.raises(DataError, match=r"field 'tests'.*test 0 is not valid Python"):
        load_mbpp("all", source=str(path))


def test_unknown_split_and_variant():
    with pytest.raises(DataError, match="unknown MBPP split"):
        load_mbpp("dev")
    with pytest.raises(DataError, match="unknown MBPP variant"):
        load_mbpp("test", variant="plus")


def test_entry_point_prefers_defined_function():
    code = "def helper(x):\n    return x\ndef main_fn(a):\n    return helper(a)"
    assert entry_point_of(code, ["assert sorted(main_fn([2, 1])) == [1, 2]"]) == "main_fn"
    assert entry_point_of("", ["assert math.isclose(f(1), 2)", "assert g(2) == 1"]) == "f"
