"""Fixtures for the sampling tests: a tiny random chat model built offline, and problem rows."""

from __future__ import annotations

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "```python\nfrom typing import List\n\n\ndef f(xs: List[int]) -> int:\n    return sum(xs)\n```\n",
    "assert add(1, 2) == 3\nassert f([1, 2]) == 3\n",
    "Complete the following Python function. Reply with the complete function in a single code block.",
    "[Reasoning] [Implementation] [Explanation] [Tests] ### Instruction ### Response ## Example",
    "You are an expert Python programmer, and here is your task: [BEGIN] [DONE]",
    "for i in range(len(numbers)):\n        if abs(x - y) < threshold:\n            return True\n",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ~50k-parameter random Llama + byte-level BPE tokenizer with a chat template, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-chat-model")
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def humaneval_rows():
    from codepref.problems import load_problems

    return load_problems("humaneval", task_ids=["0", "3", "7"])
