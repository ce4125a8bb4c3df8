"""The sampling stage end to end with a tiny random model: columns, determinism, resume, bad rows."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, List, Value

from codepref.errors import DataError
from codepref.problems import build_problems
from codepref.sampling import GenerationBackend, GenerationParams, SampleConfig, sample
from codepref.sampling.backends import derive_seed, load_backend
from codepref.sampling.backends.hf import TransformersBackend

FAST = {"n": 3, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    return load_backend(SampleConfig(model=tiny_model_dir, batch_size=4))


class CountingBackend(GenerationBackend):
    """Wraps a backend; records every prompt it generates for and can fail on the k-th call."""

    def __init__(self, inner: GenerationBackend, fail_on_call: int | None = None) -> None:
        self.inner, self.fail_on_call, self.calls = inner, fail_on_call, 0
        self.prompts: list = []

    def generate(self, prompts, n, params, seeds):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise KeyboardInterrupt("simulated kill")
        self.prompts += prompts
        return self.inner.generate(prompts, n, params, seeds)

    def has_chat_template(self):
        return self.inner.has_chat_template()

    def identity(self):
        return self.inner.identity()


class CannedBackend(GenerationBackend):
    """Answers every prompt with fixed texts (cycled to n)."""

    def __init__(self, texts: list[str], chat: bool = True) -> None:
        self.texts, self.chat = texts, chat

    def generate(self, prompts, n, params, seeds):
        return [[self.texts[i % len(self.texts)] for i in range(n)] for _ in prompts]

    def has_chat_template(self):
        return self.chat

    def identity(self):
        return {"backend": "canned", "texts": self.texts}


def test_sample_adds_columns(humaneval_rows, tiny_backend):
    out = sample(humaneval_rows, SampleConfig(**FAST), backend=tiny_backend)
    assert out.column_names == humaneval_rows.column_names + ["completions", "samples"]
    assert all(len(c) == 3 and len(s) == 3 for c, s in zip(out["completions"], out["samples"], strict=True))
    assert out.features["samples"] == List(Value("string"))
    assert out["task_id"] == humaneval_rows["task_id"]


def test_completion_mode_programs_start_with_prompt(humaneval_rows, tiny_backend):
    out = sample(humaneval_rows, SampleConfig(chat="false", **FAST), backend=tiny_backend)
    for row in out:
        assert all(s.startswith(row["prompt"]) for s in row["samples"])
    from codepref.provenance import get_provenance

    record = get_provenance(out)["sample"]  # what the card and the exports need to know
    assert record["chat"] is False and record["n"] == FAST["n"] and "model" in record


def test_same_seed_same_outputs_different_seed_different(humaneval_rows, tiny_backend):
    a = sample(humaneval_rows, SampleConfig(seed=1, **FAST), backend=tiny_backend)
    b = sample(humaneval_rows, SampleConfig(seed=1, **FAST), backend=tiny_backend)
    c = sample(humaneval_rows, SampleConfig(seed=2, **FAST), backend=tiny_backend)
    assert a["completions"] == b["completions"]
    assert a["completions"] != c["completions"]
    assert len({t for row in a["completions"] for t in row}) > 1  # sampling, not one repeated string


def test_batch_planning_respects_batch_size():
    backend = TransformersBackend.__new__(TransformersBackend)
    backend.batch_size = 4
    calls = backend._calls(5, 2, [10, 11, 12, 13, 14])
    assert [c[0] for c in calls] == [[0, 1], [2, 3], [4]] and all(c[1] == 2 for c in calls)
    calls = backend._calls(2, 6, [10, 11])
    assert [(c[0], c[1]) for c in calls] == [([0], 4), ([0], 2), ([1], 4), ([1], 2)]
    assert len({c[2] for c in calls}) == 4
    assert derive_seed(0, "humaneval/0") == derive_seed(0, "humaneval/0") != derive_seed(1, "humaneval/0")


def test_greedy_is_reproducible(humaneval_rows, tiny_backend):
    cfg = SampleConfig(n=2, temperature=0.0, max_new_tokens=8)
    out = sample(humaneval_rows.select([0]), cfg, backend=tiny_backend)
    assert out["completions"][0][0] == out["completions"][0][1]


def test_resume_after_interrupt_is_identical_and_skips_done_shards(humaneval_rows, tiny_backend, tmp_path):
    cfg = SampleConfig(shard_size=1, **FAST)
    reference = sample(humaneval_rows, cfg, backend=tiny_backend)
    flaky = CountingBackend(tiny_backend, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        sample(humaneval_rows, cfg, backend=flaky, work_dir=tmp_path)
    counting = CountingBackend(tiny_backend)
    resumed = sample(humaneval_rows, cfg, backend=counting, work_dir=tmp_path)
    assert counting.calls == 2  # shard 0 was loaded, shards 1 and 2 were generated
    assert resumed.to_list() == reference.to_list()
    again = CountingBackend(tiny_backend)
    assert sample(humaneval_rows, cfg, backend=again, work_dir=tmp_path).to_list() == reference.to_list()
    assert again.calls == 0
    changed = CountingBackend(tiny_backend)
    sample(humaneval_rows, SampleConfig(shard_size=1, **{**FAST, "n": 2}), backend=changed, work_dir=tmp_path)
    assert changed.calls == 3  # a changed config never reuses shards


def test_tests_target_codedpo_and_dstc_with_canned_answers(humaneval_rows):
    rows = humaneval_rows.select([1])  # humaneval/3, below_zero
    codedpo = CannedBackend(
        [
            "```python\nassert below_zero([1, -2]) == True\nassert below_zero([]) == False\n```",
            "assert below_zero([1]) == False\nassert True\nassert below_zero([1, -2]) == True",
        ]
    )
    out = sample(rows, SampleConfig(target="tests", n=2), backend=codedpo)
    assert out.column_names[-2:] == ["test_completions", "gen_tests"]
    assert out["gen_tests"][0] == [
        "assert below_zero([1, -2]) == True",
        "assert below_zero([]) == False",
        "assert below_zero([1]) == False",
    ]
    assert (
        out["gen_tests"][0]
        == sample(rows, SampleConfig(target="tests", n=2, max_gen_tests=5), backend=codedpo)["gen_tests"][0]
    )
    dstc_answer = (
        "[Reasoning]\nKeep a balance.\n[Implementation]\n```python\n"
        "def below_zero(operations):\n    b = 0\n    for o in operations:\n        b += o\n"
        "        if b < 0:\n            return True\n    return False\n```\n[Explanation]\nEasy.\n"
        "[Tests]\n```python\nimport math\nassert below_zero([-1]) == True\n```\n"
    )
    out = sample(rows, SampleConfig(target="tests", test_prompt="dstc", n=1), backend=CannedBackend([dstc_answer]))
    assert out["gen_tests"][0] == ["import math\nassert below_zero([-1]) == True"]
    program = out["samples"][0][0]
    assert program.startswith("from typing import List\n")  # the prompt's import re-added
    namespace: dict = {}
    exec(program, namespace)
    assert namespace["below_zero"]([1, -2]) is True


def test_code_after_tests_keeps_both_columns(humaneval_rows):
    rows = humaneval_rows.select([1])
    code = sample(
        rows,
        SampleConfig(n=1),
        backend=CannedBackend(["```python\ndef below_zero(o):\n    return False\n```"]),
    )
    both = sample(code, SampleConfig(target="tests", n=1), backend=CannedBackend(["assert below_zero([]) == False"]))
    assert both.column_names[-4:] == ["completions", "samples", "test_completions", "gen_tests"]


def test_bad_rows_raise_data_error_naming_task_and_field():
    good = {
        "task_id": "x/1",
        "prompt": "def f():\n",
        "instruction": "Write f.",
        "tests": ["assert f() is None"],
    }
    ds = build_problems([good], source="t")
    with pytest.raises(DataError, match=r"row 1, task_id 'x/2', field 'instruction'"):
        sample(
            Dataset.from_list([good, {**good, "task_id": "x/2", "instruction": "", "prompt": ""}]),
            SampleConfig(n=1, chat="true"),
            backend=CannedBackend(["x"]),
        )
    with pytest.raises(DataError, match=r"row 0, task_id 'x/1', field 'prompt'"):
        sample(
            Dataset.from_list([{**good, "prompt": ""}]),
            SampleConfig(n=1, chat="false"),
            backend=CannedBackend(["x"]),
        )
    with pytest.raises(DataError, match=r"row 0, field 'task_id'"):
        sample(Dataset.from_list([{**good, "task_id": ""}]), SampleConfig(n=1), backend=CannedBackend(["x"]))
    with pytest.raises(DataError, match="lacks columns"):
        sample(ds.remove_columns("prompt"), SampleConfig(n=1), backend=CannedBackend(["x"]))

    class Short(CannedBackend):
        def generate(self, prompts, n, params, seeds):
            return [["only one"] for _ in prompts]

    with pytest.raises(DataError, match="x/1.*expected 2"):
        sample(ds, SampleConfig(n=2, chat="true"), backend=Short(["x"]))


def test_code_block_stop(tiny_backend):
    tok = tiny_backend.tokenizer
    params = GenerationParams(stop_at_code_block=True)
    open_only = tok("```python\nx = 1\n", add_special_tokens=False)["input_ids"]
    closed = tok("```python\nx = 1\n```", add_special_tokens=False)["input_ids"]
    assert not tiny_backend._stopped(open_only, params, {}, 0)
    assert tiny_backend._stopped(closed, params, {}, 0)


def test_stop_strings_are_applied_and_removed(humaneval_rows, tiny_backend):
    params = GenerationParams(temperature=1.0, top_p=1.0, max_new_tokens=30, stop=("e",))
    outs = tiny_backend.generate(["def f():\n"], 4, params, [0])
    assert all("e" not in t for t in outs[0])


def _full_sort_nucleus(scaled, top_p):
    """The definition, by brute force in float64: sort every token, keep the smallest prefix reaching top_p."""
    probs = scaled.double().softmax(-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < top_p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


@pytest.mark.parametrize("k", [256, 4])  # 4: forces the full-sort fallback
@pytest.mark.parametrize("temperature", [0.6, 1.0])
@pytest.mark.parametrize("top_p", [0.5, 0.95])
def test_nucleus_keeps_exactly_what_a_full_sort_keeps(k, temperature, top_p):
    """The top-k prefiltered nucleus = a full sort of the vocabulary, token for token, on random logits."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from codepref.sampling.backends.hf import nucleus

    for seed in range(5):
        scores = torch.randn(16, 5000, generator=torch.Generator().manual_seed(seed)) * (1 + 2 * seed)
        scaled = TemperatureLogitsWarper(temperature)(None, scores.clone())
        idx, probs = nucleus(scaled, top_p, k=k)
        ours = torch.zeros(scaled.shape, dtype=torch.bool).scatter(-1, idx, probs > 0)
        assert torch.equal(ours, _full_sort_nucleus(scaled, top_p))
        assert torch.allclose(probs, scaled.double().softmax(-1).gather(-1, idx) * (probs > 0))
        if seed >= 2:  # peaked rows (no token sits within float32 rounding of the boundary): = transformers
            hf = ~torch.isinf(TopPLogitsWarper(top_p)(None, scaled.clone()))
            assert torch.equal(ours, hf)


def test_next_tokens_draws_from_the_renormalised_nucleus():
    from codepref.sampling.backends import GenerationParams
    from codepref.sampling.backends.hf import next_tokens

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, 1)
    params = GenerationParams(temperature=1.0, top_p=0.7)  # nucleus {0, 1}: 0.5 + 0.3 >= 0.7
    draws = next_tokens(logits, params, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=4).double() / len(draws)
    assert counts[2] == 0 and counts[3] == 0
    assert abs(counts[0].item() - 0.5 / 0.8) < 0.01
    again = next_tokens(logits, params, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)  # seeded


def test_decode_loop_matches_transformers_generate(tiny_backend):
    """Our compacting decode loop (shared prefill, finished rows dropped) = model.generate, greedy."""
    prompts = ["def f(x):\n", "assert add(1, 2) == 3\nfor i in range(len(numbers)):\n"]
    params = GenerationParams(temperature=0.0, max_new_tokens=12)
    ours = tiny_backend.generate(prompts, 1, params, [0, 1])
    tok, model = tiny_backend.tokenizer, tiny_backend.model
    for prompt, (text,) in zip(prompts, ours, strict=True):
        enc = tok(prompt, return_tensors="pt")
        ref = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        assert text == tok.decode(ref[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_sampled_rows_are_seeded(tiny_backend):
    prompts = ["def f(x):\n", [{"role": "user", "content": "Write add."}]]
    params = GenerationParams(temperature=1.0, top_p=0.9, max_new_tokens=10)
    a = tiny_backend.generate(prompts, 2, params, [3, 4])
    assert a == tiny_backend.generate(prompts, 2, params, [3, 4])
    assert all(len(row) == 2 for row in a)
