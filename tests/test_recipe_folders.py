"""Each paper folder is one experiment: its training YAMLs read what its pipeline.yaml publishes."""

from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
FOLDERS = sorted(p.parent.name for p in RECIPES.glob("*/pipeline.yaml"))


def _published(folder: str) -> tuple[dict, dict]:
    doc = yaml.safe_load((RECIPES / folder / "pipeline.yaml").read_text())
    stages = {}
    publish = None
    for item in doc["stages"]:
        kind = next(k for k in item if k not in ("name", "input"))
        stages[item.get("name", kind)] = (kind, item[kind] or {})
        if kind == "publish":
            publish = item[kind]
    assert publish is not None, f"{folder}/pipeline.yaml publishes nothing"
    return publish, stages


@pytest.mark.parametrize("folder", FOLDERS)
def test_training_yamls_read_what_the_pipeline_publishes(folder):
    publish, stages = _published(folder)
    trainings = [p for p in (RECIPES / folder).glob("*.yaml") if not p.name.startswith("pipeline")]
    assert trainings, folder
    for path in trainings:
        cfg = yaml.safe_load(path.read_text())
        if "dataset_name" not in cfg:
            continue
        where = f"{folder}/{path.name}"
        assert cfg["dataset_name"] == publish["repo"], where
        assert str(cfg.get("dataset_revision")) == str(publish["version"]), where
        config = cfg.get("dataset_config") or "default"
        assert config in publish["configs"], f"{where}: {config!r} is not published ({sorted(publish['configs'])})"
        kind, options = stages[publish["configs"][config]]
        if cfg.get("dynamic_selection"):  # per-epoch re-drawing reads the candidates form
            assert kind == "export" and options.get("format") == "candidates", where
        if "sft_top100" in path.name:
            assert options.get("top_percent") == 100, where


def test_every_paper_folder_is_checked():
    assert {"code-optimise", "codedpo", "dstc", "iotacode", "quickstart"} <= set(FOLDERS)
