"""Dynamic solution selection (Code-Optimise §3.4) vs static pairs: one DPO epoch on the same data.

Static: one pair per problem drawn once, TRL's ``precompute_ref_log_probs`` scores its 2 x P sequences.
Dynamic: ``recipes/dpo.py --dynamic_selection true`` on the candidates form — every unique drawable
completion scored once by the reference model, a fresh pair per problem per epoch.

Prints wall time of each run (reference pass + the epoch), their ratio (target <= 1.15 per epoch of
training; the one-time reference pass is reported separately since it amortises over epochs) and the
reference forward count (target: the number of unique completions).

    HF_HUB_OFFLINE=1 python benchmarks/dynamic_dpo.py [--problems 48 --responses 6 --epochs 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
import datasets  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

from codepref.training.dynamic import first_draw  # noqa: E402
from codepref.training.reference import count_forwards, drawable_responses  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_model(path: Path, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [f"def f{i}(x):\n    return x * {i} + sum(range({i}))\n" for i in range(50)]
    tok.train_from_iterator(
        corpus,
        trainer=trainers.BpeTrainer(
            vocab_size=500,
            special_tokens=["<pad>", "<eos>", "<|user|>", "<|assistant|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def candidates(problems: int, responses: int, seed: int = 0) -> list[dict]:
    """Candidates rows like ``codepref export --format candidates``: first half pass (fast→slow), rest fail."""
    import random

    rng = random.Random(seed)
    rows = []
    n_pass = max(2, responses // 2)
    for t in range(problems):
        resp = [
            [
                {
                    "role": "assistant",
                    "content": "```python\n"
                    + "\n".join(
                        f"def f{t}(x):\n    y = x * {rng.randint(0, 99)}\n    return y + {k}"
                        for k in range(rng.randint(1, 4))
                    )
                    + "\n```",
                }
            ]
            for _ in range(responses)
        ]
        pairs = [{"chosen": c, "rejected": r, "kind": "pvf"} for c in range(n_pass) for r in range(n_pass, responses)]
        pairs += [{"chosen": c, "rejected": r, "kind": "qvs"} for c in range(n_pass) for r in range(c + 1, n_pass)]
        rows.append(
            {
                "task_id": f"bench/{t}",
                "prompt": [{"role": "user", "content": f"Write f{t}(x)."}],
                "responses": resp,
                "pairs": pairs,
                "sft": [0],
            }
        )
    return rows


def run_dpo(dataset: Path, model: Path, out: Path, dynamic: bool, epochs: int):
    spec = importlib.util.spec_from_file_location("dpo_recipe", ROOT / "recipes" / "dpo.py")
    dpo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dpo)
    args = [
        "--dataset_name",
        str(dataset),
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(out),
        "--dynamic_selection",
        str(dynamic).lower(),
        "--precompute_ref_log_probs",
        "true",
        "--num_train_epochs",
        str(epochs),
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-4",
        "--max_length",
        "512",
        "--bf16",
        "false",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--logging_steps",
        "1000",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
    ]
    with count_forwards(LlamaForCausalLM) as count:
        t0 = time.perf_counter()
        trainer = dpo.main(*dpo.make_parser().parse_args_and_config(args=args))
        total = time.perf_counter() - t0
    train_loop = next(h["train_runtime"] for h in trainer.state.log_history if "train_runtime" in h)
    return total, train_loop, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=48)
    ap.add_argument("--responses", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=1)
    opts = ap.parse_args()
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_model(tmp / "model")
        rows = candidates(opts.problems, opts.responses)
        cand = Dataset.from_list(rows)
        cand.to_json(tmp / "candidates.jsonl", lines=True)
        first_draw(cand).to_json(tmp / "static.jsonl", lines=True)
        unique = sum(len({json.dumps(r["responses"][i]) for i in drawable_responses(r)}) for r in rows)
        odd = sum(len({json.dumps(r["responses"][i]) for i in drawable_responses(r)}) % 2 for r in rows)
        run_dpo(tmp / "static.jsonl", model, tmp / "warm", False, 1)  # warm-up: imports, allocator
        s_total, s_loop, s_count = run_dpo(tmp / "static.jsonl", model, tmp / "static", False, opts.epochs)
        d_total, d_loop, d_count = run_dpo(tmp / "candidates.jsonl", model, tmp / "dynamic", True, opts.epochs)
    print(
        f"problems={opts.problems} responses/problem={opts.responses} epochs={opts.epochs} "
        f"unique drawable completions={unique}"
    )
    print(
        f"static : total {s_total:6.2f} s  train loop {s_loop:6.2f} s  reference sequences {s_count.reference:5d}"
        f"  policy sequences {s_count.policy}"
    )
    print(
        f"dynamic: total {d_total:6.2f} s  train loop {d_loop:6.2f} s  reference sequences {d_count.reference:5d}"
        f"  policy sequences {d_count.policy}"
    )
    print(f"train-loop time ratio dynamic/static: {d_loop / s_loop:.3f}  (target <= 1.15)")
    print(f"total time ratio (incl. one-time reference pass): {d_total / s_total:.3f}")
    print(
        f"reference sequences: {d_count.reference} = {unique} unique completions + {odd} odd-count padding "
        f"(target {unique}); during training: 0 (policy sequences = 2 x pairs x epochs = {d_count.policy})"
    )


if __name__ == "__main__":
    sys.exit(main())
