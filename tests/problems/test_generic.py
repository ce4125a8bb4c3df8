import json

import pytest
from datasets import Dataset

from codepref.errors import ConfigError, DataError
from codepref.problems import ProblemsConfig, build_problems, load_problems


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_mapping_and_assert_block(tmp_path):
    rows = [
        {
            "id": 1,
            "question": "Add a and b.",
            "checks": "assert add(1, 2) == 3\nx = 2\nassert add(x, x) == 4\n",
            "fn": "add",
        }
    ]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    ds = load_problems(
        ProblemsConfig(
            source=str(path),
            mapping={"task_id": "id", "instruction": "question", "tests": "checks", "entry_point": "fn"},
        )
    )
    row = ds[0]
    assert row["task_id"] == "1"
    assert row["instruction"] == "Add a and b." and row["prompt"] == ""
    assert row["tests"] == ["assert add(1, 2) == 3", "x = 2\nassert add(x, x) == 4"]
    assert row["entry_point"] == "add"


def test_io_tests_and_hub_style_folder(tmp_path):
    root = tmp_path / "cc"
    (root / "data").mkdir(parents=True)
    Dataset.from_list(
        [
            {
                "name": "1548_A",
                "description": "Read n, print 2n.",
                "io_tests": {"input": ["1\n", "5\n"], "output": ["2\n", "10\n"]},
            }
        ]
    ).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    ds = load_problems(ProblemsConfig(source=str(root), mapping={"task_id": "name", "instruction": "description"}))
    row = ds[0]
    assert row["task_id"] == "1548_A" and row["tests"] == []
    assert row["io_tests"] == {"input": ["1\n", "5\n"], "output": ["2\n", "10\n"]}


def test_mapping_errors(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "q": "x", "t": ["assert True or f()"]}])
    with pytest.raises(DataError, match="mapped columns \\['nope'\\] are not in the dataset"):
        load_problems(ProblemsConfig(source=str(path), mapping={"task_id": "nope"}))
    with pytest.raises(DataError, match="unknown schema columns \\['question'\\]"):
        load_problems(ProblemsConfig(source=str(path), mapping={"question": "q"}))
    with pytest.raises(ConfigError, match="mapping applies to generic sources"):
        ProblemsConfig(source="humaneval", mapping={"prompt": "q"})


def test_rows_without_tests_or_with_bad_types_are_named(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"task_id": "a", "prompt": "p", "tests": ["assert f()"]}, {"task_id": "b", "prompt": "p", "tests": []}],
    )
    with pytest.raises(DataError) as e:
        load_problems(str(path))
    assert "row 1" in str(e.value) and "'b'" in str(e.value) and "at least one test" in str(e.value)
    with pytest.raises(DataError, match="duplicate task_id"):
        build_problems([{"task_id": "a", "prompt": "p", "tests": ["assert 1"]}] * 2, source="mem")
    with pytest.raises(DataError, match="field 'io_tests'"):
        build_problems([{"task_id": "a", "prompt": "p", "io_tests": {"input": ["1"], "output": []}}], source="mem")
    with pytest.raises(DataError, match="field 'prompt'.*needs a prompt or an instruction"):
        build_problems([{"task_id": "a", "prompt": "", "tests": ["assert 1"]}], source="mem")
