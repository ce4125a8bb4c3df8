import json
import subprocess
import sys

import pytest
from datasets import Dataset

from codepref.cli import main
from codepref.dataset_io import read_dataset, write_dataset


def test_problems_then_show(tmp_path, capsys):
    out = tmp_path / "problems.jsonl"
    assert main(["problems", str(out), "--source", "humaneval", "--task_ids", "[7, 22]"]) == 0
    ds = read_dataset(out)
    assert ds["task_id"] == ["humaneval/7", "humaneval/22"]
    assert main(["show", str(out)]) == 0
    assert "humaneval/22" in capsys.readouterr().out


def test_show_counts_test_trust_levels(tmp_path, capsys):
    rows = [
        {"task_id": "t/1", "tests": ["assert f() == 1", "assert isinstance(f(), P)"], "samples": ["x"],
         "passed": [False], "test_trust": ["judged", "in-process"]},
    ]  # fmt: skip
    path = tmp_path / "d.jsonl"
    write_dataset(Dataset.from_list(rows), path)
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "test trust" in out and "1 judged" in out and "1 in-process" in out


def test_config_file_and_flags_share_one_definition(tmp_path):
    cfg = tmp_path / "problems.yaml"
    cfg.write_text("source: humaneval\nlimit: 3\n")
    out = tmp_path / "p"
    assert main(["problems", "--config", str(cfg), str(out)]) == 0
    assert len(read_dataset(out)) == 3
    assert main(["problems", "--config", str(cfg), "--limit", "2", str(out)]) == 0  # flags override the file
    assert len(read_dataset(out)) == 2


def test_config_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["problems", str(tmp_path / "x"), "--limit", "0"]) == 2
    assert "limit must be >= 1" in capsys.readouterr().err
    assert main(["problems", str(tmp_path / "x"), "--task_ids", "[9999]"]) == 2
    assert "'9999' is not in" in capsys.readouterr().err


def test_pairs_export_stats(tmp_path, capsys):
    rows = [
        {
            "task_id": "a",
            "prompt": "def f():\n",
            "instruction": "Write f.",
            "tests": ["assert f()"],
            "completions": ["A", "B", "C"],
            "samples": ["s0", "s1", "s2"],
            "passed": [True, True, False],
            "runtime_ns": [2.0, 1.0, None],
        }
    ]
    src = write_dataset(Dataset.from_list(rows), tmp_path / "timed")
    assert main(["pairs", str(src), str(tmp_path / "paired"), "--policy", "code-optimise", "--kinds", "[pvf]"]) == 0
    assert [p["kind"] for p in read_dataset(tmp_path / "paired")[0]["pairs"]] == ["pvf", "pvf"]
    assert (
        main(
            [
                "export",
                str(tmp_path / "paired"),
                str(tmp_path / "dpo.jsonl"),
                "--format",
                "preference",
                "--style",
                "standard",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert [(r["chosen"], r["rejected"]) for r in lines] == [("B", "C"), ("A", "C")]
    assert main(["stats", str(tmp_path / "paired")]) == 0
    text = capsys.readouterr().out
    assert "pairs: pvf" in text and "problems kept" in text


def test_cli_import_does_not_import_torch():
    code = "import sys; import codepref.cli as c; c.build_parser(); print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


@pytest.mark.parametrize(
    "cmd", ["problems", "sample", "execute", "time", "rank", "pairs", "export", "stats", "show", "run"]
)
def test_every_subcommand_documents_its_options(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--config" in text or cmd == "run"


def test_publish_pull_versions_roundtrip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CODEPREF_HUB", str(tmp_path / "store"))
    src = tmp_path / "problems"
    assert main(["problems", str(src), "--limit", "2"]) == 0
    assert main(["publish", str(src), "me/probs", "--config_name", "problems", "--version", "v1"]) == 0
    assert 'load_dataset("me/probs", "problems", revision="v1")' in capsys.readouterr().out
    assert main(["publish", str(src), "me/probs", "--config_name", "problems", "--version", "v1"]) == 2
    assert "immutable" in capsys.readouterr().err
    assert main(["versions", "me/probs"]) == 0
    assert "v1" in capsys.readouterr().out
    assert (
        main(
            [
                "pull",
                "me/probs",
                str(tmp_path / "back"),
                "--config_name",
                "problems",
                "--revision",
                "v1",
                "--split",
                "train",
            ]
        )
        == 0
    )
    assert read_dataset(tmp_path / "back").to_list() == read_dataset(src).to_list()


def test_one_declaration_reaches_cli_flag_help_and_pipeline_yaml(tmp_path, capsys):
    """A stage registered once: its config field is a CLI flag with its help, a YAML key, checked alike."""
    import dataclasses
    import types

    from codepref.errors import ConfigError
    from codepref.pipeline import run_pipeline
    from codepref.stages import STAGES, StageSpec, register_stage

    @dataclasses.dataclass
    class Inner:
        scale: int = dataclasses.field(default=1, metadata={"help": "multiplies the tag length"})

    @dataclasses.dataclass
    class TagConfig:
        tag: str = dataclasses.field(default="x", metadata={"help": "the tag written into every row"})
        inner: Inner = dataclasses.field(default_factory=Inner)

    def tag_rows(ds, cfg):
        return ds.map(lambda r: {"tag": cfg.tag * cfg.inner.scale})

    mod = types.ModuleType("codepref_test_tag_stage")
    mod.TagConfig, mod.tag_rows = TagConfig, tag_rows
    sys.modules[mod.__name__] = mod
    register_stage("tag", StageSpec(f"{mod.__name__}:TagConfig", f"{mod.__name__}:tag_rows", help="Tag rows."))
    try:
        with pytest.raises(SystemExit):
            main(["tag", "--help"])
        text = capsys.readouterr().out
        assert "--tag" in text and "the tag written into every row" in text
        assert "--inner.scale" in text and "multiplies the tag length" in text
        src = tmp_path / "p.jsonl"
        assert main(["problems", str(src), "--limit", "2"]) == 0
        assert main(["tag", str(src), str(tmp_path / "t.jsonl"), "--tag", "ab", "--inner.scale", "2"]) == 0
        assert read_dataset(tmp_path / "t.jsonl")["tag"] == ["abab", "abab"]
        doc = {
            "output_dir": str(tmp_path / "run"),
            "stages": [{"problems": {"limit": 2}}, {"tag": {"tag": "cd", "inner": {"scale": 3}}}],
        }
        out = run_pipeline(doc)
        assert read_dataset(out["tag"])["tag"] == ["cdcdcd", "cdcdcd"]
        # one parser: a wrong type is refused the same way on both paths
        with pytest.raises(SystemExit) as e:
            main(["tag", str(src), str(tmp_path / "u.jsonl"), "--inner.scale", "many"])
        assert e.value.code == 2 and "inner.scale" in capsys.readouterr().err
        with pytest.raises(ConfigError, match=r"stage 1 \(tag\)"):
            run_pipeline({**doc, "stages": [{"problems": {}}, {"tag": {"inner": {"scale": "many"}}}]})
    finally:
        STAGES.pop("tag", None)
