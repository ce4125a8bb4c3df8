import pytest
from datasets import Dataset, DatasetDict

from codepref.dataset_io import read_dataset, write_dataset
from codepref.errors import DataError

ROWS = [{"task_id": "a", "tests": ["assert 1"], "m": [[0, 1]]}, {"task_id": "b", "tests": [], "m": []}]


@pytest.mark.parametrize("name", ["out", "out.jsonl", "out.parquet"])
def test_round_trip(tmp_path, name):
    ds = Dataset.from_list(ROWS)
    path = write_dataset(ds, tmp_path / "sub" / name)
    back = read_dataset(path)
    assert back.to_list() == ROWS
    write_dataset(ds.select([0]), path)  # overwriting is atomic and complete
    assert read_dataset(path).to_list() == ROWS[:1]
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temp files left behind


def test_errors_and_splits(tmp_path):
    with pytest.raises(DataError, match="no dataset at"):
        read_dataset(tmp_path / "missing")
    (tmp_path / "x.csvx").write_text("a")
    with pytest.raises(DataError, match="unknown dataset file type"):
        read_dataset(tmp_path / "x.csvx")
    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(
        str(tmp_path / "dd")
    )
    with pytest.raises(DataError, match="choose one with split="):
        read_dataset(tmp_path / "dd")
    assert len(read_dataset(tmp_path / "dd", split="test")) == 1


def test_bad_files_are_one_error_naming_file_line_and_field(tmp_path, capsys):
    from codepref.cli import main

    cases = {
        "broken.jsonl": (
            '{"task_id": "a", "tests": ["x"]}\n{"task_id": "b", "tests": ["y"\n',
            r"line 2: not valid JSON",
        ),
        "mixed.jsonl": (
            '{"task_id": "a", "tests": ["x"]}\n\n{"task_id": "b", "tests": "assert f()"}\n',
            r"field 'tests': line 3: a string, but a list on line 1",
        ),
        "array.jsonl": ("[1, 2]\n", r"line 1: expected a JSON object, got list"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataError, match=message) as e:
            read_dataset(path)
        assert str(path) in str(e.value)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        read_dataset(junk)
    assert main(["show", str(tmp_path / "broken.jsonl")]) == 2  # the CLI prints the message, not a traceback
    err = capsys.readouterr().err
    assert "broken.jsonl" in err and "line 2" in err and "Traceback" not in err
