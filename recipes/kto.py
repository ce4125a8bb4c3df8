"""KTO on unpaired desirable / undesirable responses (DSTC §3).

    python recipes/kto.py --config recipes/quickstart/kto.yaml
    python recipes/kto.py --config recipes/dstc/kto.yaml

Reads a ``kto`` config (``prompt/completion/label``: desirable if the response was the chosen side
of some pair). Imbalanced labels are fine: set ``desirable_weight`` / ``undesirable_weight``.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from trl import KTOConfig, KTOTrainer, ModelConfig, TrlParser, get_peft_config

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


def main(script_args: RecipeArguments, training_args: KTOConfig, model_args: ModelConfig) -> KTOTrainer:
    # 1. Load the published dataset (by name + config + revision) and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    # 2. Build the trainer (reference = a frozen copy, or the adapter disabled under LoRA)
    trainer = KTOTrainer(
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
    return TrlParser((RecipeArguments, KTOConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
