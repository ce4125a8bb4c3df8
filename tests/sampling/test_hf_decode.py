"""The CPU decode path of the transformers backend (hf_decode): same logits as transformers' SDPA attention
over its DynamicCache, through prefill, per-prompt copies, growth past the spare capacity and compaction."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from codepref.sampling.backends import hf_decode  # noqa: E402
from codepref.sampling.backends.hf_decode import (  # noqa: E402
    DECODE_ATTENTION,
    decode_attention,
    growing_cache,
    use_decode_attention,
)


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,  # grouped-query: 3 query heads per key/value head
        max_position_embeddings=512,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config).eval()


def _decode(model, cache, ids, mask, steps, repeat, drop_at, gen):
    """Prefill, copy each prompt ``repeat`` times, then ``steps`` one-token steps (rows dropped at ``drop_at``);
    returns the logits of every step. Tokens are drawn from a seeded generator shared by both paths."""
    logits = []
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
        cache = out.cache
        cache.batch_repeat_interleave(repeat)
        att = mask.repeat_interleave(repeat, 0)
        pos = positions[:, -1].repeat_interleave(repeat) + 1
        cur = out.logits[:, -1].argmax(-1).repeat_interleave(repeat)
        for step in range(steps):
            att = torch.cat([att, att.new_ones((att.shape[0], 1))], dim=1)
            out = model(input_ids=cur[:, None], attention_mask=att, position_ids=pos[:, None], cache=cache)
            cache = out.cache
            logits.append(out.logits[:, -1].clone())
            cur = torch.randint(0, 97, (att.shape[0],), generator=gen)
            pos = pos + 1
            if step == drop_at:
                keep = torch.tensor([0, 2, 3, 5])
                cache.batch_select_indices(keep)
                att, cur, pos = att[keep], cur[keep], pos[keep]
    return logits


def test_decode_attention_and_growing_cache_give_sdpa_logits():
    reference = _tiny_llama()
    ours = copy.deepcopy(reference)
    assert use_decode_attention(ours) and ours.config._attn_implementation == DECODE_ATTENTION
    # three left-padded prompts of different lengths
    ids = torch.randint(1, 97, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :4], mask[1, :1] = 0, 0
    steps = hf_decode.CAPACITY_STEP + 8  # past the first spare capacity: the buffers grow once
    want = _decode(reference, None, ids, mask, steps, 2, 5, torch.Generator().manual_seed(2))
    got = _decode(ours, growing_cache(ours.config), ids, mask, steps, 2, 5, torch.Generator().manual_seed(2))
    assert len(got) == len(want) == steps
    for step, (a, b) in enumerate(zip(want, got, strict=True)):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), f"step {step}: max diff {(a - b).abs().max()}"


def test_decode_attention_reads_the_whole_buffer_of_a_growing_cache(monkeypatch):
    """The one-token path multiplies the layer's buffers as they are (no copy of the live views)."""
    model = _tiny_llama()
    use_decode_attention(model)
    widths = []
    real_bmm = torch.bmm

    def spy(a, b):
        widths.append(b.shape[-1] if len(widths) % 2 == 0 else a.shape[-1])  # scores = q @ kᵀ, then weights @ v
        return real_bmm(a, b)

    reference = _tiny_llama()  # the same weights, SDPA attention
    ids = torch.randint(1, 97, (2, 5), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want = reference(input_ids=ids[:, :1], cache=reference(input_ids=ids, use_cache=True).cache).logits
        out = model(input_ids=ids, cache=growing_cache(model.config), use_cache=True)
        monkeypatch.setattr(torch, "bmm", spy)
        got = model(input_ids=ids[:, :1], cache=out.cache).logits
    assert widths and set(widths) == {5 + hf_decode.CAPACITY_STEP}
    assert torch.allclose(want, got, atol=1e-5)  # no padding mask: only the spare positions are masked


def test_decode_attention_on_plain_tensors_equals_sdpa():
    """Without a growing cache (any key/value, masked rows) the result is SDPA's."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    g = torch.Generator().manual_seed(3)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    module.train(False)
    q = torch.randn(4, 6, 1, 8, generator=g)
    k, v = torch.randn(4, 2, 11, 8, generator=g), torch.randn(4, 2, 11, 8, generator=g)
    mask = torch.ones(4, 1, 1, 11, dtype=torch.bool)
    mask[1, ..., :3] = False
    for m in (mask, None):
        want, _ = sdpa_attention_forward(module, q, k, v, m, scaling=0.3)
        got, _ = decode_attention(module, q, k[:, :, :, :], v, m, scaling=0.3)
        assert torch.allclose(want, got, atol=1e-6)


def test_backend_switches_cpu_sdpa_models_only(tiny_model_dir):
    from codepref.sampling import SampleConfig, load_backend

    backend = load_backend(SampleConfig(model=tiny_model_dir, batch_size=4))
    assert backend.decode_attention
    eager = _tiny_llama()
    eager.set_attn_implementation("eager")
    assert not use_decode_attention(eager) and eager.config._attn_implementation == "eager"
