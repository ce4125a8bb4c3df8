"""Every recipe config parses with its script's parser (TRL's own validation included), on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT, recipe

METHODS = {"sft", "dpo", "kto", "orpo", "reward", "ppo", "grpo"}
CONFIGS = sorted(
    p
    for p in (ROOT / "recipes").glob("*/*.yaml")
    if p.parent.name != "accelerate" and not p.stem.startswith("pipeline")  # data pipelines: tests/test_pipeline.py
)


def method_of(path: Path) -> str:
    return path.stem.split("_")[0]


def test_every_method_has_tiny_and_quickstart_configs():
    for folder in ("tiny", "quickstart"):
        assert {p.stem for p in (ROOT / "recipes" / folder).glob("*.yaml") if not p.stem.startswith("pipeline")} == (
            METHODS
        )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(path, tmp_path):
    assert method_of(path) in METHODS, path
    if method_of(path) == "ppo":
        pytest.importorskip("trl.experimental.ppo", reason="PPO needs trl <= 1.12 (make test-ppo)")
    module = recipe(method_of(path))
    script_args, training_args, model_args = module.make_parser().parse_args_and_config(
        args=["--config", str(path), "--output_dir", str(tmp_path)]
    )
    assert training_args.bf16 is False  # CPU-safe; GPU users flip it
    assert script_args.dataset_name and script_args.dataset_config and model_args.model_name_or_path
    if script_args.dynamic_selection:
        assert script_args.dataset_config.startswith("candidates")  # candidates or candidates-top100


def test_paper_settings():
    parse = lambda p: (
        recipe(method_of(Path(p)))
        .make_parser()
        .parse_args_and_config(  # noqa: E731
            args=["--config", str(ROOT / "recipes" / p), "--output_dir", "/tmp/x"]
        )
    )
    _, co, _ = parse("code-optimise/dpo_qvs.yaml")
    assert (co.learning_rate, co.lr_scheduler_type.value, co.num_train_epochs, co.max_length) == (
        5e-7,
        "linear",
        30,
        2048,
    )
    assert co.load_best_model_at_end and co.metric_for_best_model == "eval_loss"
    _, ic, mc = parse("iotacode/dpo.yaml")
    assert (ic.learning_rate, ic.beta, mc.lora_r, mc.use_peft, ic.gradient_accumulation_steps) == (
        1e-6,
        1.0,
        32,
        True,
        64,
    )
    _, ds, _ = parse("dstc/kto.yaml")
    assert (ds.learning_rate, ds.lr_scheduler_type.value, ds.warmup_steps, ds.num_train_epochs) == (
        5e-7,
        "cosine_with_min_lr",
        0.05,
        1,
    )
    _, cd, _ = parse("codedpo/dpo.yaml")
    assert cd.loss_type == ["sigmoid", "sft"] and cd.learning_rate == 5e-6 and cd.num_train_epochs == 10
