"""Tiny CPU fixtures for the recipe tests: a random Llama, an offline BPE tokenizer, small datasets.

The recipes are scripts (``recipes/*.py``), not a package: :func:`recipe` imports one by path and
the tests call its ``main`` in-process (start-up is the expensive part on a 2-core machine).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

ROOT = Path(__file__).resolve().parents[2]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PROGRAMS = {
    "fast": "def add(a, b):\n    return a + b\n",
    "slow": "def add(a, b):\n    s = a\n    for _ in range(b):\n        s += 1\n    return s\n",
    "slower": "def add(a, b):\n    return sum([a, b, 0])\n",
    "bad": "def add(a, b):\n    return a - b\n",
    "worse": "def add(a, b):\n    return None\n",
}


def recipe(name: str):
    """Import ``recipes/<name>.py`` as a module."""
    mod_name = f"codepref_recipe_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = list(PROGRAMS.values()) * 4 + ["Write a function add(a, b) that returns the sum.", "```python\n```"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(path: Path, tokenizer, seed: int = 0) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A folder with a random 2-layer Llama (~30k parameters) and its tokenizer."""
    return build_model(tmp_path_factory.mktemp("tiny-model"), build_tokenizer())


def _prompt(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Write a function add(a, b) that returns the sum. Case {i}."}]


def _answer(name: str) -> list[dict]:
    return [{"role": "assistant", "content": f"```python\n{PROGRAMS[name]}```"}]


def candidates_rows(n_problems: int = 4) -> list[dict]:
    """Candidates form: responses 0-2 pass (fast → slow), 3-4 fail; all PvF and QvS pairs."""
    names = ["fast", "slow", "slower", "bad", "worse"]
    pairs = [{"chosen": c, "rejected": r, "kind": "pvf"} for c in range(3) for r in (3, 4)]
    pairs += [{"chosen": c, "rejected": r, "kind": "qvs"} for c in range(3) for r in range(c + 1, 3)]
    return [
        {
            "task_id": f"toy/{i}",
            "prompt": _prompt(i),
            "responses": [_answer(n) for n in names],
            "pairs": pairs,
            "sft": [0, 1],
        }
        for i in range(n_problems)
    ]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One .jsonl file per export format (what ``codepref export`` writes), plus problems for GRPO."""
    root = tmp_path_factory.mktemp("data")
    cands = candidates_rows()
    pref, kto, sft = [], [], []
    for row in cands:
        for p in row["pairs"]:
            pref.append(
                {
                    "task_id": row["task_id"],
                    "prompt": row["prompt"],
                    "chosen": row["responses"][p["chosen"]],
                    "rejected": row["responses"][p["rejected"]],
                    "kind": p["kind"],
                }
            )
        for i, r in enumerate(row["responses"]):
            kto.append({"task_id": row["task_id"], "prompt": row["prompt"], "completion": r, "label": i < 3})
        for i in row["sft"]:
            sft.append({"task_id": row["task_id"], "prompt": row["prompt"], "completion": row["responses"][i]})
    problems = [
        {
            "task_id": f"toy/{i}",
            "prompt": "def add(a, b):\n",
            "entry_point": "add",
            "instruction": "Write a function add(a, b) that returns the sum.",
            "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"],
            "test_setup": "",
        }
        for i in range(4)
    ]
    for name, rows in {
        "candidates": cands,
        "pairs-all": pref,
        "kto": kto,
        "sft-top25": sft,
        "problems": problems,
    }.items():
        Dataset.from_list(rows).to_json(root / f"{name}.jsonl", lines=True)
    return root


def common_args(model: Path, out: Path, **extra) -> list[str]:
    args = {
        "model_name_or_path": str(model),
        "output_dir": str(out),
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        **extra,
    }
    flat = []
    for k, v in args.items():
        flat += [f"--{k}", json.dumps(v) if isinstance(v, list) else str(v)]
    return flat
