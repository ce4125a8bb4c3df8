"""Every recipe trains a few steps on CPU with a tiny random Llama; the loss moves; the checkpoint loads."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, LlamaModel

from codepref.training.reference import count_forwards

from .conftest import PROGRAMS, ROOT, common_args, recipe

FAST = ["--per_device_train_batch_size", "2", "--learning_rate", "1e-2"]
try:
    import trl.experimental.ppo  # noqa: F401

    HAS_PPO = True
except ImportError:  # TRL >= 1.13 removed PPO
    HAS_PPO = False
LORA = ["--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]


def run(name: str, args: list[str]):
    """``recipes/<name>.py`` with ``recipes/tiny/<name>.yaml``; ``args`` override the config."""
    module = recipe(name)
    config = ["--config", str(ROOT / "recipes" / "tiny" / f"{name}.yaml")]
    return module.main(*module.make_parser().parse_args_and_config(args=config + args))


def losses(trainer, key: str = "loss") -> list[float]:
    return [h[key] for h in trainer.state.log_history if key in h]


def assert_moved(values: list[float]) -> None:
    assert len(values) >= 2 and max(values) - min(values) > 1e-6, values


def test_sft_static(tiny_model, data_dir, tmp_path):
    out = tmp_path / "sft"
    tr = run(
        "sft",
        [
            "--dataset_name",
            str(data_dir / "sft-top25.jsonl"),
            "--max_steps",
            "3",
            *FAST,
            *common_args(tiny_model, out),
        ],
    )
    assert_moved(losses(tr))
    AutoModelForCausalLM.from_pretrained(out)


def test_sft_dynamic_redraws_solutions(tiny_model, data_dir, tmp_path):
    tr = run(
        "sft",
        [
            "--dataset_name",
            str(data_dir / "candidates.jsonl"),
            "--dynamic_selection",
            "true",
            "--num_train_epochs",
            "3",
            "--max_steps",
            "-1",
            *FAST,
            *common_args(tiny_model, tmp_path / "sft"),
        ],
    )
    ds = tr.train_dataset
    assert len(ds) == 4  # one solution per problem per epoch
    draws = [ds.solutions_for_epoch(e) for e in range(3)]
    assert draws[0] != draws[1] or draws[1] != draws[2]
    assert {i for d in draws for _, i in d} <= {0, 1}  # only the top-N% pool
    callback = next(c for c in tr.callback_handler.callbacks if hasattr(c, "epochs_seen"))
    assert callback.epochs_seen == [0, 1, 2] and ds.epoch == 2
    assert_moved(losses(tr))


def test_dpo_dynamic_redraws_pairs_and_reuses_reference_logps(tiny_model, data_dir, tmp_path, monkeypatch):
    import datasets

    # a cold datasets cache: TRL >= 1.13 keeps precomputed reference log-probs there between runs
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")
    # the decoder itself: TRL >= 1.13 runs it without the LM head's forward (chunked log-probs)
    with count_forwards(LlamaModel) as count:
        tr = run(
            "dpo",
            [
                "--dataset_name",
                str(data_dir / "candidates.jsonl"),
                "--dynamic_selection",
                "true",
                "--num_train_epochs",
                "3",
                "--max_steps",
                "-1",
                "--max_length",
                "256",
                *FAST,
                *common_args(tiny_model, tmp_path / "dpo"),
            ],
        )
    ds = tr.train_dataset
    draws = [ds.pairs_for_epoch(e) for e in range(3)]
    assert draws[0] != draws[1] and draws[1] != draws[2]  # a fresh pair per problem per epoch
    assert ds.pairs_for_epoch(1) == draws[1]  # seeded: reproducible
    # reference: 5 unique completions x 4 problems scored once (+1 padding sequence per odd problem) ...
    assert len(ds.cache) == 20
    assert count.reference == 20 + 4
    # ... and never again: 3 epochs x 4 pairs x 2 sequences all ran with gradients
    assert count.policy == 3 * 4 * 2
    assert_moved(losses(tr))
    AutoModelForCausalLM.from_pretrained(tmp_path / "dpo")


def test_dpo_lora_rpo_uses_adapter_disabled_reference(tiny_model, data_dir, tmp_path):
    from peft import AutoPeftModelForCausalLM, PeftModel

    out = tmp_path / "rpo"
    tr = run(
        "dpo",
        [
            "--dataset_name",
            str(data_dir / "pairs-all.jsonl"),
            "--dynamic_selection",
            "false",
            "--loss_type",
            "sigmoid",
            "sft",
            "--loss_weights",
            "1.0",
            "0.5",
            *FAST,
            *LORA,
            *common_args(tiny_model, out),
        ],
    )
    assert tr.ref_model is None and isinstance(tr.model, PeftModel)  # no second copy
    assert_moved(losses(tr))
    AutoPeftModelForCausalLM.from_pretrained(out)


def test_kto(tiny_model, data_dir, tmp_path):
    tr = run(
        "kto",
        [
            "--dataset_name",
            str(data_dir / "kto.jsonl"),
            "--max_steps",
            "3",
            *FAST,
            *common_args(tiny_model, tmp_path / "kto"),
        ],
    )
    assert_moved(losses(tr))
    AutoModelForCausalLM.from_pretrained(tmp_path / "kto")


def test_orpo(tiny_model, data_dir, tmp_path):
    tr = run(
        "orpo",
        [
            "--dataset_name",
            str(data_dir / "pairs-all.jsonl"),
            "--max_steps",
            "3",
            "--max_length",
            "256",
            *FAST,
            *common_args(tiny_model, tmp_path / "orpo"),
        ],
    )
    assert_moved(losses(tr))
    AutoModelForCausalLM.from_pretrained(tmp_path / "orpo")


def test_reward_model_then_ppo_with_lora(tiny_model, data_dir, tmp_path):
    rm = tmp_path / "rm"
    tr = run(
        "reward",
        ["--dataset_name", str(data_dir / "pairs-all.jsonl"), "--max_steps", "3", *FAST, *common_args(tiny_model, rm)],
    )
    assert_moved(losses(tr))
    AutoModelForSequenceClassification.from_pretrained(rm, num_labels=1)
    if not HAS_PPO:
        with pytest.raises(SystemExit, match=r"make recipe-ppo"):  # stops at once, saying what to do
            recipe("ppo").make_parser()
        pytest.skip("PPO needs trl.experimental.ppo (trl <= 1.12): `make test-ppo` runs this test")
    ppo = run(
        "ppo",
        [
            "--dataset_name",
            str(data_dir / "pairs-all.jsonl"),
            "--reward_model_path",
            str(rm),
            "--per_device_train_batch_size",
            "2",
            "--total_episodes",
            "8",
            "--response_length",
            "12",
            "--num_ppo_epochs",
            "1",
            "--num_mini_batches",
            "1",
            "--learning_rate",
            "1e-3",
            *LORA,
            *common_args(tiny_model, tmp_path / "ppo"),
        ],
    )
    assert ppo.ref_model is None  # LoRA: reference = adapter disabled
    scores = [h["objective/scores"] for h in ppo.state.log_history if "objective/scores" in h]
    assert len(scores) >= 2 and all(s == s for s in scores)  # reward model scored every rollout


def test_execution_reward_is_fraction_of_tests_passed():
    from codepref.execution import ExecutionConfig
    from codepref.training.rewards import ExecutionReward

    reward = ExecutionReward(execution=ExecutionConfig(timeout=5.0, memory_mb=512))
    tests = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"]
    completions = [[{"role": "assistant", "content": f"```python\n{PROGRAMS[n]}```"}] for n in ("fast", "bad")]
    completions.append([{"role": "assistant", "content": "no code here"}])
    try:
        scores = reward(
            prompts=[None] * 3,
            completions=completions,
            tests=[tests] * 3,
            test_setup=[""] * 3,
            entry_point=["add"] * 3,
            source_prompt=["def add(a, b):\n"] * 3,
        )
    finally:
        reward.close()
    assert scores == pytest.approx([1.0, 1 / 3, 0.0])


def test_grpo_rewards_come_from_executed_tests(tiny_model, data_dir, tmp_path, monkeypatch):
    from codepref.execution import WorkerPool
    from codepref.training import rewards

    calls = []
    original = rewards.ExecutionReward.__call__

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append((kwargs["tests"], out))
        return out

    executed = []
    real_map = WorkerPool.map_asserts

    def sandbox_spy(self, jobs):
        executed.extend(jobs)
        return real_map(self, jobs)

    monkeypatch.setattr(rewards.ExecutionReward, "__call__", spy)
    monkeypatch.setattr(WorkerPool, "map_asserts", sandbox_spy)
    # a random tiny model writes no code: every completion is read as a correct program, so the
    # logged reward must be exactly what the sandbox returns for it (all hidden tests pass → 1.0)
    monkeypatch.setattr(rewards.ExecutionReward, "program", lambda self, *a, **k: PROGRAMS["fast"])
    tr = run(
        "grpo",
        [
            "--dataset_name",
            str(data_dir / "problems.jsonl"),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--num_generations",
            "2",
            "--max_completion_length",
            "12",
            "--learning_rate",
            "1e-2",
            *common_args(tiny_model, tmp_path / "grpo"),
        ],
    )
    assert calls and all(len(t) == 3 for tests, _ in calls for t in tests)  # hidden tests reached the executor
    logged = [h for h in tr.state.log_history if "rewards/execution_reward/mean" in h]
    assert logged and all(h["rewards/execution_reward/mean"] == 1.0 for h in logged)
    assert executed and all(program == PROGRAMS["fast"] for program, _, _ in executed)  # ran in the sandbox pool
    AutoModelForCausalLM.from_pretrained(tmp_path / "grpo")
    assert torch.get_num_threads() == 1


def test_execution_reward_applies_its_execution_config():
    """The reward's sandbox takes every limit of an ExecutionConfig, not only a timeout."""
    from codepref.execution import ExecutionConfig
    from codepref.training.rewards import ExecutionReward

    hungry = "def add(a, b):\n    block = bytearray(400 * 2**20)\n    return a + b + block[0]\n"
    completion = [[{"role": "assistant", "content": f"```python\n{hungry}```"}]]
    args = dict(prompts=[None], completions=completion, tests=[["assert add(1, 2) == 3"]], entry_point=["add"])
    scores = {}
    for memory_mb in (1024, 200):
        reward = ExecutionReward(execution=ExecutionConfig(timeout=5.0, memory_mb=memory_mb, slots=1))
        try:
            scores[memory_mb] = reward(**args)
        finally:
            reward.close()
    assert scores == {1024: [1.0], 200: [0.0]}


def test_recipe_run_again_resumes_from_its_last_checkpoint(tiny_model, data_dir, tmp_path, monkeypatch):
    """As alignment-handbook's scripts: a second run with the same output_dir continues, not restarts."""
    import transformers

    from codepref.training import last_checkpoint

    trained = []
    real_step = transformers.Trainer.training_step

    def counted(self, *a, **k):
        trained.append(self.state.global_step)
        return real_step(self, *a, **k)

    monkeypatch.setattr(transformers.Trainer, "training_step", counted)

    out = tmp_path / "sft-resume"
    assert last_checkpoint(str(out)) is None
    args = ["--dataset_name", str(data_dir / "sft-top25.jsonl"), *FAST, *common_args(tiny_model, out)]
    args += ["--save_strategy", "steps", "--save_steps", "2"]
    first = run("sft", [*args, "--max_steps", "2"])
    assert first.state.global_step == 2 and last_checkpoint(str(out)).endswith("checkpoint-2")
    trained.clear()
    second = run("sft", [*args, "--max_steps", "4"])
    assert second.state.global_step == 4
    assert trained == [2, 3]  # only steps 3 and 4 ran: steps 1-2 came from checkpoint-2
