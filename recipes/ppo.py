"""PPO against a learned reward model, policy trained with LoRA (IotaCode §4).

    python recipes/reward.py --config recipes/quickstart/reward.yaml   # first: the reward model
    python recipes/ppo.py --config recipes/quickstart/ppo.yaml

Policy: ``model_name_or_path`` (typically the SFT model). Reward and value models: the sequence
classifier ``reward.py`` saved (``reward_model_path``). Prompts: the ``prompt`` column of any
published config, one per problem. Uses ``trl.experimental.ppo``, which TRL removed in 1.13: on a
newer TRL this script stops at once and says what to do (``make recipe-ppo`` runs it in ``.venv-ppo``,
an environment with trl 1.12). With LoRA the reference policy is the base with the adapter disabled.
"""

from __future__ import annotations

import trl
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from trl import ModelConfig, TrlParser, get_peft_config

from codepref.training import RecipeArguments, resolve_model_path, train_eval_datasets

try:
    from trl.experimental.ppo import PPOConfig, PPOTrainer
except ImportError:  # TRL >= 1.13
    PPOConfig = PPOTrainer = None
PPO_MISSING = (
    f"PPO needs trl.experimental.ppo, which TRL removed in 1.13 (installed: trl {trl.__version__}). "
    "Run `make recipe-ppo` (it trains in .venv-ppo, with trl 1.12), or pip install 'trl>=1.12,<1.13'."
)


def prompt_dataset(dataset, tokenizer, max_prompt_length: int | None = None):
    """One tokenised prompt per problem (PPO generates its own responses)."""
    seen: set[str] = set()
    dataset = dataset.filter(lambda r: not (r["task_id"] in seen or seen.add(r["task_id"])))

    def tokenize(row):
        prompt = row["prompt"]
        if isinstance(prompt, list):  # conversational
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
            return {"input_ids": ids["input_ids"]}
        return {"input_ids": tokenizer(prompt, add_special_tokens=False)["input_ids"]}

    dataset = dataset.map(tokenize, remove_columns=dataset.column_names)
    if max_prompt_length:
        dataset = dataset.filter(lambda r: len(r["input_ids"]) <= max_prompt_length)
    return dataset


def main(script_args: RecipeArguments, training_args, model_args: ModelConfig):
    # 1. Load the tokenizer and the published dataset's prompts
    policy_path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(policy_path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_dataset, eval_dataset = train_eval_datasets(script_args)
    train_dataset = prompt_dataset(train_dataset, tokenizer)
    eval_dataset = prompt_dataset(eval_dataset, tokenizer) if eval_dataset is not None else None

    # 2. Models: policy (+ LoRA), reward and value heads from the trained reward model
    kwargs = {"dtype": model_args.dtype, "revision": model_args.model_revision}
    policy = AutoModelForCausalLM.from_pretrained(policy_path, **kwargs)
    reward_model = AutoModelForSequenceClassification.from_pretrained(training_args.reward_model_path, num_labels=1)
    value_model = AutoModelForSequenceClassification.from_pretrained(training_args.reward_model_path, num_labels=1)
    for m in (reward_model, value_model):
        m.config.pad_token_id = tokenizer.pad_token_id
    peft_config = get_peft_config(model_args)
    ref_policy = None if peft_config is not None else AutoModelForCausalLM.from_pretrained(policy_path, **kwargs)

    # 3. Build the trainer and train
    trainer = PPOTrainer(
        args=training_args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref_policy,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        peft_config=peft_config,
    )
    trainer.train()

    # 4. Save (the policy: the LoRA adapter under use_peft), optionally push
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def make_parser() -> TrlParser:
    if PPOConfig is None:
        raise SystemExit(PPO_MISSING)
    return TrlParser((RecipeArguments, PPOConfig, ModelConfig))


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
