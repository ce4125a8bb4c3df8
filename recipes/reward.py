"""Reward model (Bradley–Terry) on execution-verified pairs, for PPO (IotaCode §4).

    python recipes/reward.py --config recipes/quickstart/reward.yaml
    python recipes/reward.py --config recipes/iotacode/reward.yaml

Reads a ``pairs-*`` config (TRL's implicit-prompt preference rows). The model is a sequence
classifier with one output (the score head is new). With LoRA, the adapter is merged on save so
``recipes/ppo.py`` can load the reward (and value) model from a plain folder.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from trl import ModelConfig, RewardConfig, RewardTrainer, TrlParser, get_peft_config

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


def main(script_args: RecipeArguments, training_args: RewardConfig, model_args: ModelConfig) -> RewardTrainer:
    # 1. Load the published dataset (by name + config + revision) and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    peft_config = get_peft_config(model_args)
    if peft_config is not None:
        peft_config.task_type = "SEQ_CLS"  # the score head is new: train it with the adapter
        peft_config.modules_to_save = list(peft_config.modules_to_save or []) + ["score"]

    # 2. Build the trainer (Bradley–Terry: -log σ(r(chosen) − r(rejected)))
    trainer = RewardTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )

    # 3. Train, save (LoRA merged into a plain model folder), optionally push
    trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    if peft_config is not None:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(training_args.output_dir)
        tokenizer.save_pretrained(training_args.output_dir)
    else:
        trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((RecipeArguments, RewardConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
