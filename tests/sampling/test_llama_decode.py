"""The CPU forward pass of the transformers backend for Llama-architecture models (llama_decode): the logits of
transformers' own forward over the whole sequence, through a packed prefill of unequal prompts, samples sharing
their prompt's cache, growth of the generated-positions buffer, rows and whole prompts leaving, one-row steps."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from codepref.sampling.backends import llama_decode  # noqa: E402
from codepref.sampling.backends.llama_decode import llama_decoder  # noqa: E402

VOCAB = 97


def _model(kind: str = "llama", seed: int = 0, **extra):
    torch.manual_seed(seed)
    shape = dict(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,  # grouped-query: 3 query heads per key/value head
        max_position_embeddings=512,
    )
    shape.update(extra)
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape))
    elif kind == "qwen2":  # biases on q/k/v
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape))
    elif kind == "mistral":
        model = transformers.MistralForCausalLM(transformers.MistralConfig(**shape, sliding_window=None))
    else:
        raise ValueError(kind)
    with torch.no_grad():  # random non-zero biases and norm weights, so a missing one shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _check(model, prompts, k, steps, drops, atol=1e-4, pack=None):
    """Run the decoder and, per live row, transformers' forward over the row's whole sequence; compare logits.

    ``drops``: ``{step: predicate(row id) -> keep}`` applied before that step's tokens are fed."""
    assert llama_decoder(model) is not None
    decoder = llama_decode.LlamaDecoder(model, pack=pack)
    gen = torch.Generator().manual_seed(1)
    seqs = [list(p) for p in prompts for _ in range(k)]
    rows = list(range(len(seqs)))
    worst = 0.0
    with torch.inference_mode():
        logits = decoder.start(prompts, k)
        for step in range(steps):
            ref = torch.stack([model(input_ids=torch.tensor([seqs[r]])).logits[0, -1] for r in rows])
            assert logits.shape == ref.shape
            worst = max(worst, (logits.float() - ref.float()).abs().max().item())
            tokens = torch.randint(0, VOCAB, (len(rows),), generator=gen)
            for r, t in zip(rows, tokens.tolist(), strict=True):
                seqs[r].append(t)
            if step in drops:
                keep = [j for j, r in enumerate(rows) if drops[step](r)]
                rows, tokens = [rows[j] for j in keep], tokens[keep]
                decoder.keep(torch.tensor(keep))
            logits = decoder.step(tokens)
    assert worst < atol, worst
    return decoder


@pytest.mark.parametrize(("kind", "pack"), [("llama", None), ("qwen2", None), ("mistral", None), ("qwen2", False)])
def test_logits_equal_transformers_through_sharing_growth_and_compaction(kind, pack):
    """``pack=False``: each layer on its own weight (no prepacked copy: too little memory, or no oneDNN)."""
    model = _model(kind)
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]  # unequal: packed, no padding
    steps = llama_decode.CAPACITY_STEP + 6  # the generated-positions buffer grows once
    drops = {
        3: lambda r: r % 3 != 1,  # rows of every prompt leave
        10: lambda r: r not in (3, 5),  # prompt 1 loses its last rows: it leaves the attention's prompts
        20: lambda r: r == 0,  # one row left: the one-row matmuls
    }
    decoder = _check(model, prompts, k=3, steps=steps, drops=drops, pack=pack)
    linears = [decoder.head, *(layer[i] for layer in decoder.layers for i in (1, 2, 4, 5))]
    if pack is False:
        assert all(linear.packed is None for linear in linears)
    elif torch.backends.mkldnn.is_available():
        assert all(linear.packed is not None for linear in linears)
    assert decoder.prompts == 1 and decoder.k == 1


def test_one_sample_per_prompt_and_one_prompt_many_samples():
    model = _model("llama", seed=3)
    _check(model, [[1, 2, 3], [4, 5, 6, 7, 8]], k=1, steps=6, drops={})  # greedy-style calls
    _check(model, [[9]], k=5, steps=6, drops={2: lambda r: r in (1, 4)})  # a one-token prompt, n > 1
    # multi-head attention (one query head per key/value head) and a head_dim other than hidden / heads
    _check(_model("llama", seed=5, num_key_value_heads=6), [[1, 2], [3, 4, 5]], k=2, steps=5, drops={})
    _check(_model("llama", seed=6, head_dim=16), [[1, 2, 3]], k=3, steps=5, drops={1: lambda r: r != 0})


def test_bfloat16_logits_close_to_transformers():
    model = _model("llama", seed=4).to(torch.bfloat16)
    _check(model, [[3, 4, 5, 6], [7, 8]], k=2, steps=5, drops={2: lambda r: r != 1}, atol=0.1)


def test_other_models_keep_transformers_forward():
    assert llama_decoder(_model("llama")) is not None
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=VOCAB))
    assert llama_decoder(gpt2) is None  # another architecture
    windowed = transformers.MistralForCausalLM(
        transformers.MistralConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            sliding_window=8,
        )
    )
    assert llama_decoder(windowed) is None  # a sliding window changes the attention
    hooked = _model("llama")
    hooked.model.layers[0].mlp.register_forward_hook(lambda *a: None)
    assert llama_decoder(hooked) is None  # a hook would be skipped
    gelu = _model("llama", hidden_act="gelu")
    assert llama_decoder(gelu) is None
    quantised = _model("llama")

    class Int8Linear(torch.nn.Linear):  # stands for a quantised layer class (bitsandbytes' are Linear subclasses)
        pass

    old = quantised.model.layers[1].mlp.down_proj
    quantised.model.layers[1].mlp.down_proj = Int8Linear(old.in_features, old.out_features, bias=False)
    assert llama_decoder(quantised) is None
    offloaded = _model("llama").to("meta")
    assert llama_decoder(offloaded) is None


def test_backend_samples_equal_with_and_without_the_decoder(tiny_model_dir):
    """Greedy samples of the backend (float32): the Llama decoder and transformers' forward give the same text."""
    from codepref.sampling import SampleConfig
    from codepref.sampling.backends import GenerationParams, load_backend

    backend = load_backend(SampleConfig(model=tiny_model_dir, batch_size=8, dtype="float32"))
    prompts = ["def add(a, b):\n", "for i in range(", "assert f([1, 2]) =="]
    params = GenerationParams(max_new_tokens=40, temperature=0.0)
    ours = backend.generate(prompts, 1, params, [0, 1, 2])
    assert backend._llama  # the tiny Llama took the decoder
    backend._llama = False  # transformers' forward over its DynamicCache
    theirs = backend.generate(prompts, 1, params, [0, 1, 2])
    assert ours == theirs
    sampled = GenerationParams(max_new_tokens=30, temperature=0.8, top_p=0.9)
    backend._llama = None
    first = backend.generate(prompts, 4, sampled, [5, 6, 7])
    assert backend.generate(prompts, 4, sampled, [5, 6, 7]) == first  # a seed gives the same samples


def test_weights_are_prepacked_only_when_a_copy_fits_in_half_the_free_memory(monkeypatch):
    model = _model("llama")
    size = sum(m.weight.numel() * m.weight.element_size() for m in model.modules() if isinstance(m, torch.nn.Linear))
    monkeypatch.setattr(llama_decode, "_available_memory", lambda: 2 * size - 1)
    assert llama_decode.LlamaDecoder(model).head.packed is None
    monkeypatch.setattr(llama_decode, "_available_memory", lambda: 2 * size)
    if torch.backends.mkldnn.is_available():
        assert llama_decode.LlamaDecoder(model).head.packed is not None
