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


def test_iotacode_dpo_and_orpo_use_the_sft_settings_and_lora_on_all_but_the_embedding():
    """IotaCode §3: DPO "The remaining parameters were the same as in SFT training" (5,000 warm-up steps,
    cosine schedule, sequence length); LoRA r=32 "applied to all layers except the embedding layer"."""
    folder = RECIPES / "iotacode"
    sft = yaml.safe_load((folder / "sft.yaml").read_text())
    for name in ("dpo.yaml", "orpo.yaml"):
        cfg = yaml.safe_load((folder / name).read_text())
        for key in ("warmup_steps", "lr_scheduler_type", "max_length"):
            assert cfg[key] == sft[key], (name, key)
        assert cfg["warmup_steps"] == 5000 and cfg["lora_r"] == 32 and cfg["use_peft"] is True
        modules = cfg["lora_target_modules"]
        assert "lm_head" in modules and not any("embed" in m for m in modules)
        assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= set(modules)
