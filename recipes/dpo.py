"""DPO on execution-verified preference pairs (Code-Optimise, IotaCode, DSTC, CodeDPO).

    python recipes/dpo.py --config recipes/quickstart/dpo.yaml
    python recipes/dpo.py --config recipes/codedpo/dpo.yaml      # RPO: loss_type [sigmoid, sft]

Static: a ``pairs-*`` config (``prompt/chosen/rejected``). Dynamic (Code-Optimise §3.4,
``dynamic_selection: true`` on the ``candidates`` config): one pair per problem, freshly drawn at
every epoch start. Reference log-probs are computed once per unique completion before training
(TRL's ``precompute_ref_log_probs`` on the reference table) and reused by every pair and epoch.
With LoRA (``use_peft``) the reference is the base model with the adapter disabled — no second copy.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from trl import DPOConfig, DPOTrainer, ModelConfig, TrlParser, get_peft_config

from codepref.training import RecipeArguments, last_checkpoint, resolve_model_path, train_eval_datasets


def main(script_args: RecipeArguments, training_args: DPOConfig, model_args: ModelConfig) -> DPOTrainer:
    # 1. Load the published dataset (by name + config + revision) and the model
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    kinds = script_args.pair_kinds
    if script_args.dynamic_selection:
        from codepref.training.dynamic import expand_pairs
        from codepref.training.reference import reference_table

        if training_args.ld_alpha is not None:
            raise ValueError("dynamic selection caches one reference score per completion; ld_alpha needs pairs")
        training_args.precompute_ref_log_probs = True  # the loss reads ref logps from the batch
        candidates = train_dataset
        train_dataset = reference_table(candidates, kinds)  # each unique completion once
        eval_dataset = expand_pairs(eval_dataset, kinds) if eval_dataset is not None else None
    elif kinds:
        train_dataset = train_dataset.filter(lambda r: r["kind"] in kinds)
        eval_dataset = eval_dataset.filter(lambda r: r["kind"] in kinds) if eval_dataset is not None else None
    model_path = resolve_model_path(model_args.model_name_or_path)
    training_args.model_init_kwargs = {
        "dtype": model_args.dtype,
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
    }
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    # 2. Build the trainer (ref_model=None: a copy of the model, or the adapter disabled under LoRA)
    trainer = DPOTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )

    # 3. Dynamic selection: pairs re-drawn per epoch, reference scores looked up in the cache
    if script_args.dynamic_selection:
        from codepref.training.dynamic import DynamicPairDataset, ResampleCallback
        from codepref.training.reference import ReferenceCache

        cache = ReferenceCache.from_prepared(trainer.train_dataset)
        dynamic = DynamicPairDataset(candidates, cache, seed=script_args.selection_seed, kinds=kinds)
        trainer.train_dataset = dynamic
        trainer.add_callback(ResampleCallback(dynamic))

    # 4. Train, save, optionally push
    trainer.train(resume_from_checkpoint=last_checkpoint(training_args.output_dir))
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((RecipeArguments, DPOConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
