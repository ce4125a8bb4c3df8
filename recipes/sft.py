"""Supervised fine-tuning on execution-verified solutions (Code-Optimise SFT_N, IotaCode SFT).

    python recipes/sft.py --config recipes/quickstart/sft.yaml
    python recipes/sft.py --config recipes/code-optimise/sft_top25.yaml --model_name_or_path my/model

Static: a ``sft-top25``-style config (``prompt/completion``, the top-N% fastest passing solutions).
Dynamic (Code-Optimise §3.4, ``dynamic_selection: true`` on the ``candidates`` config): every epoch
trains on one solution per problem, freshly drawn from its top-N% pool.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


def main(script_args: RecipeArguments, training_args: SFTConfig, model_args: ModelConfig) -> SFTTrainer:
    # 1. Load the published dataset (by name + config + revision) and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    if script_args.dynamic_selection:  # candidates → every solution of each problem's top-N% pool
        from codepref.training.dynamic import sft_pool

        train_dataset = sft_pool(train_dataset)
        eval_dataset = sft_pool(eval_dataset) if eval_dataset is not None else None
        training_args.packing = False  # one drawn solution per problem per step
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    # 2. Build the trainer (TRL tokenises the data; LoRA when use_peft)
    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )

    # 3. Dynamic selection: serve one drawn solution per problem, re-drawn at every epoch start
    if script_args.dynamic_selection:
        from codepref.training.dynamic import DynamicSFTDataset, ResampleCallback

        dynamic = DynamicSFTDataset(trainer.train_dataset, seed=script_args.selection_seed)
        trainer.train_dataset = dynamic
        trainer.add_callback(ResampleCallback(dynamic))

    # 4. Train, save, optionally push
    trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((RecipeArguments, SFTConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
