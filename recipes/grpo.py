"""GRPO with execution rewards: online RL on hidden tests (IotaCode's strongest path).

    python recipes/grpo.py --config recipes/quickstart/grpo.yaml

Reads a ``problems`` config (``tests``, ``test_setup``, ``entry_point``). The policy samples
``num_generations`` completions per prompt; each is rewarded with the fraction of the problem's
hidden tests its extracted program passes, run by codepref's sandboxed worker pool — never in the
trainer's process (:class:`codepref.training.rewards.ExecutionReward`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


@dataclass
class GRPOArguments(RecipeArguments):
    execution: dict | str | None = field(
        default=None,
        metadata={
            "help": "Sandbox limits of the reward's test runs: the options of codepref's ExecutionConfig as a "
            "YAML mapping ({timeout: 5, memory_mb: 1024, cpu_time: 2}) or a JSON string; default timeout 5 s"
        },
    )
    chat: bool = field(default=True, metadata={"help": "Chat prompts (instruction) or completion prompts"})
    system_prompt: str | None = field(default=None, metadata={"help": "System message for chat prompts"})


def rl_dataset(problems, chat: bool, system_prompt: str | None):
    """Problems → GRPO rows: the prompt the policy sees + what the reward needs to run the tests."""
    from codepref.sampling import code_prompt

    missing = {"task_id", "tests"} - set(problems.column_names)
    if missing:
        raise ValueError(f"GRPO needs a problems config with hidden tests; missing columns {sorted(missing)}")

    def to_row(row):
        return {
            "prompt": code_prompt(row, chat=chat, system_prompt=system_prompt),
            "source_prompt": row["prompt"],
            "tests": row["tests"],
            "test_setup": row.get("test_setup") or "",
            "entry_point": row.get("entry_point"),
        }

    return problems.map(to_row, remove_columns=[c for c in problems.column_names if c != "task_id"])


def execution_config(value: dict | str | None):
    """The reward's ExecutionConfig, read by codepref's own config parser (unknown or bad options fail)."""
    from codepref.execution import ExecutionConfig
    from codepref.stages import parse_config

    options = json.loads(value) if isinstance(value, str) else dict(value or {})
    return parse_config(ExecutionConfig, {"timeout": 5.0, **options})


def main(script_args: GRPOArguments, training_args: GRPOConfig, model_args: ModelConfig) -> GRPOTrainer:
    from codepref.training.rewards import ExecutionReward

    # 1. Load the published problems and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    train_dataset = rl_dataset(train_dataset, script_args.chat, script_args.system_prompt)
    if eval_dataset is not None:
        eval_dataset = rl_dataset(eval_dataset, script_args.chat, script_args.system_prompt)
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    reward = ExecutionReward(execution=execution_config(script_args.execution), chat=script_args.chat)

    # 2. Build the trainer: rewards come from executing the hidden tests in the sandbox
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=[reward],
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )

    # 3. Train, save, optionally push
    try:
        trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    finally:
        reward.close()
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((GRPOArguments, GRPOConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
