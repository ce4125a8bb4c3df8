"""ORPO: odds-ratio preference optimisation, no reference model (IotaCode §4, with LoRA r=32).

    python recipes/orpo.py --config recipes/quickstart/orpo.yaml
    python recipes/orpo.py --config recipes/iotacode/orpo.yaml

Reads a ``pairs-*`` config (``prompt/chosen/rejected``). In trl 1.12 ORPO lives in
``trl.experimental.orpo``.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from trl import ModelConfig, TrlParser, get_peft_config
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


def main(script_args: RecipeArguments, training_args: ORPOConfig, model_args: ModelConfig) -> ORPOTrainer:
    # 1. Load the published dataset (by name + config + revision) and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    if script_args.pair_kinds:
        kinds = script_args.pair_kinds
        train_dataset = train_dataset.filter(lambda r: r["kind"] in kinds)
        eval_dataset = eval_dataset.filter(lambda r: r["kind"] in kinds) if eval_dataset is not None else None
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    # 2. Build the trainer (no reference model: ORPO's penalty is on the policy's own odds)
    trainer = ORPOTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )

    # 3. Train, save, optionally push
    trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((RecipeArguments, ORPOConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
