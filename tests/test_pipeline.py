import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from codepref.errors import ConfigError
from codepref.pipeline import DONE, StageSpec, plan, register_stage, run_pipeline


def test_config_errors_are_reported_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="non-empty 'stages'"):
        plan({"stages": []})
    with pytest.raises(ConfigError, match=r"stage 0: expected exactly one of"):
        plan({"stages": [{"smaple": {}}]})
    with pytest.raises(ConfigError, match=r"stage 1 \(sample\): unknown options \['temprature'\]"):
        plan({"stages": [{"problems": {}}, {"sample": {"temprature": 0.5}}]})
    with pytest.raises(ConfigError, match=r"stage 0 \(problems\): limit must be >= 1"):
        plan({"stages": [{"problems": {"limit": 0}}]})
    with pytest.raises(ConfigError, match="input 'nope' is not an earlier stage"):
        plan({"stages": [{"problems": {}}, {"pairs": {}, "input": "nope"}]})
    with pytest.raises(ConfigError, match="used twice"):
        plan({"stages": [{"problems": {}}, {"problems": {}}]})
    with pytest.raises(ConfigError, match="needs an input"):
        plan({"stages": [{"pairs": {}}]})
    assert not list(tmp_path.iterdir())


def _double(ds, cfg):
    return ds.map(lambda r: {"n_tests": len(r["tests"]) * cfg.factor})


calls = []


def _count(ds, cfg):
    calls.append(len(ds))
    return _double(ds, cfg)


def test_run_skips_finished_stages_and_honours_from_until(tmp_path):
    import dataclasses

    @dataclasses.dataclass
    class Factor:
        factor: int = 2

    import sys
    import types

    mod = types.ModuleType("codepref_test_stage")
    mod.Factor, mod.count = Factor, _count
    sys.modules["codepref_test_stage"] = mod
    register_stage("count", StageSpec("codepref_test_stage:Factor", "codepref_test_stage:count"))
    doc = {
        "output_dir": str(tmp_path / "run"),
        "stages": [
            {"problems": {"source": "humaneval", "limit": 3}},
            {"count": {"factor": 2}},
            {"name": "count3", "count": {"factor": 3}, "input": "problems"},
        ],
    }
    calls.clear()
    out = run_pipeline(doc, until="count")
    assert calls == [3] and not (out["count3"] / DONE).exists()
    run_pipeline(doc)  # problems and count are done: only count3 runs
    assert calls == [3, 3]
    assert load_from_disk(str(out["count3"]))["n_tests"] == [
        3 * len(t) for t in load_from_disk(str(out["problems"]))["tests"]
    ]
    run_pipeline(doc)
    assert calls == [3, 3]  # nothing to do
    doc["stages"][1]["count"]["factor"] = 5  # a changed config reruns that stage
    run_pipeline(doc, start="count", until="count")
    assert calls == [3, 3, 3]
    assert json.loads((out["count"] / DONE).read_text())["stage"] == "count"
    with pytest.raises(ConfigError, match="--from 'nope' is not a stage"):
        run_pipeline(doc, start="nope")


def test_empty_stage_outputs_are_saved_and_published(tmp_path, monkeypatch):
    """A model that solves nothing yields no pairs: the empty export is still saved and published."""
    from datasets import Dataset

    from codepref.hub import pull

    monkeypatch.setenv("CODEPREF_HUB", str(tmp_path / "store"))
    rows = [
        {
            "task_id": "a",
            "prompt": "p",
            "instruction": "i",
            "tests": ["assert f()"],
            "completions": ["x", "y"],
            "samples": ["x", "y"],
            "passed": [False, False],
        }
    ]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "samples"))
    doc = {
        "output_dir": str(tmp_path / "run"),
        "stages": [
            {"load": {"path": str(tmp_path / "samples")}},
            {"pairs": {"policy": "code-optimise", "kinds": ["pvf"]}},
            {"name": "dpo", "export": {"format": "preference"}, "input": "pairs"},
            {"publish": {"repo": "me/empty", "version": "v1", "configs": {"dpo": "dpo", "samples": "pairs"}}},
        ],
    }
    out = run_pipeline(doc)
    dpo = load_from_disk(str(out["dpo"]))
    assert len(dpo) == 0 and {"prompt", "chosen", "rejected"} <= set(dpo.column_names)
    record = json.loads((out["publish"] / "result.json").read_text())
    assert record["configs"] == ["samples"] and record["skipped_empty"] == ["dpo"]  # said, not silently dropped
    assert len(pull("me/empty", config="samples", revision="v1", split="train")) == 1


def test_publish_stage_publishes_stage_outputs_with_provenance(tmp_path, monkeypatch):
    from codepref.hub import pull

    monkeypatch.setenv("CODEPREF_HUB", str(tmp_path / "store"))
    doc = {
        "output_dir": str(tmp_path / "run"),
        "stages": [
            {"problems": {"source": "humaneval", "limit": 2}},
            {"publish": {"repo": "me/p", "version": "v1", "configs": {"problems": "problems"}}},
        ],
    }
    out = run_pipeline(doc)
    record = json.loads((out["publish"] / "result.json").read_text())
    assert record["version"] == "v1"
    assert len(pull("me/p", config="problems", revision="v1", split="train")) == 2
    run_pipeline(doc)  # done already: not republished (which the store would refuse)
    with pytest.raises(ConfigError, match="unknown stages"):
        bad = {**doc, "output_dir": str(tmp_path / "run2")}
        bad["stages"] = [doc["stages"][0], {"publish": {"repo": "me/p", "version": "v2", "configs": {"x": "nope"}}}]
        run_pipeline(bad)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*/pipeline*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_shipped_pipelines_are_valid(path):
    """Every paper/quickstart pipeline file names real stages with valid options (no work is done)."""
    from codepref.pipeline import load_pipeline

    _, stages = plan(load_pipeline(path))
    assert stages[0].kind in ("problems", "seed", "load")
    assert any(s.kind == "publish" for s in stages)


def test_overrides_set_stage_options_for_one_run(tmp_path):
    from codepref.pipeline import apply_overrides

    doc = {
        "output_dir": str(tmp_path / "run"),
        "stages": [{"problems": {"source": "humaneval", "limit": 5}}, {"name": "s", "sample": {"n": 8}}],
    }
    changed = apply_overrides(doc, ["problems.limit=2", "s.n=3", "s.stop=['x', 'y']"])
    assert changed["stages"][0]["problems"]["limit"] == 2 and doc["stages"][0]["problems"]["limit"] == 5
    assert changed["stages"][1]["sample"]["n"] == 3 and changed["stages"][1]["sample"]["stop"] == ["x", "y"]
    with pytest.raises(ConfigError, match="no single stage named 'nope'"):
        apply_overrides(doc, ["nope.n=1"])
    with pytest.raises(ConfigError, match="STAGE.OPTION=VALUE"):
        apply_overrides(doc, ["problems"])
    with pytest.raises(ConfigError, match=r"stage 0 \(problems\): limit must be >= 1"):
        run_pipeline(doc, overrides=["problems.limit=0"])  # checked like the file itself
    out = run_pipeline(doc, until="problems", overrides=["problems.limit=2"])
    assert len(load_from_disk(str(out["problems"]))) == 2
