"""Sampling steps of a Llama-architecture model on CPU, each prompt's KV cache held once for all its samples.

The transformers backend samples ``k`` continuations of every prompt in a call. Through transformers' model
stack each of the ``k`` rows carries its own copy of the prompt's keys and values, and a decode step reads all
of them: on the embedded model (bfloat16, 2 cores, 80 rows, ~250 cached positions) attention over those copies
took a third of a step, and the module stack (masks, cache objects, ~1,000 small ops) a fixed ~7 ms per step
on top of the ~17 ms the weights take to stream through the matmuls (benchmarks/README.md). Here:

- the prompts are prefilled packed, without padding, and only their last positions go through the LM head;
- the prompt's keys/values are stored once per prompt, and a step's attention reads them once for all the
  prompt's live rows (one matmul with the ``k × groups`` query vectors of a prompt), then each row's own
  generated positions (a buffer that grows in place, keys stored transposed so the matmuls read it as is);
- the forward pass is the architecture's arithmetic written as plain tensor ops, op for op as transformers'
  eager implementation (RMSNorm in float32, rotary embeddings from the model's own module, SiLU MLP), with
  the attention softmax in float32 over prefix and generated positions together.

:func:`llama_decoder` returns None (the caller keeps transformers' own forward) for anything else: another
architecture, a sliding window, quantised or hooked linear layers, a GPU.
"""

from __future__ import annotations

from typing import Any

# decoder layer classes whose forward is Llama's: pre-norm RMSNorm, rotary q/k, grouped-query attention, SiLU
# gated MLP (Mistral and Qwen2 differ by a sliding window, checked below, and Qwen2 by q/k/v biases)
LLAMA_LAYERS = frozenset({"LlamaDecoderLayer", "MistralDecoderLayer", "Qwen2DecoderLayer"})
PACK_BATCH = 64  # the batch size oneDNN's prepacked weight layout is chosen for (a hint; every size works)
CAPACITY_STEP = 32  # generated positions added to the cache when it is full (attention reads them all, masked)


def llama_decoder(model: Any) -> LlamaDecoder | None:
    """A :class:`LlamaDecoder` over ``model`` when its forward is Llama's and it runs on CPU; else None."""
    import torch

    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    config = model.config
    if inner is None or layers is None or len(layers) == 0:
        return None
    if any(p.device.type != "cpu" for p in model.parameters()):  # a GPU, or weights offloaded (meta)
        return None
    if {type(layer).__name__ for layer in layers} - LLAMA_LAYERS or getattr(config, "hidden_act", None) != "silu":
        return None
    if getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True):
        return None
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
        return None
    if getattr(config, "pretraining_tp", 1) != 1:
        return None
    linears = _linears(model)
    modules = [*linears, inner.embed_tokens, inner.norm, *(m for layer in layers for m in layer.modules())]
    if type(inner.embed_tokens) is not torch.nn.Embedding:  # e.g. a scaled embedding
        return None
    if any(type(m) is not torch.nn.Linear for m in linears) or any(  # quantised layers are subclasses
        m._forward_hooks or m._forward_pre_hooks or hasattr(m, "_hf_hook") for m in modules
    ):  # a hook (e.g. accelerate's offloading) would be skipped
        return None
    return LlamaDecoder(model)


def _linears(model: Any) -> list[Any]:
    """The LM head and every layer's projections: the linear layers the decoder runs."""
    out = [model.lm_head]
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        out += [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    return out


def _rms_norm(hidden: Any, weight: Any, eps: float) -> Any:
    """Llama's RMSNorm (LlamaRMSNorm.forward): normalised in float32, scaled in the model's dtype."""
    import torch

    x = hidden.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(hidden.dtype)


def _rotate(x: Any, cos: Any, sin: Any) -> Any:
    """Rotary position embedding (apply_rotary_pos_emb): ``x * cos + rotate_half(x) * sin``."""
    import torch

    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class _Linear:
    """The linear layers ``modules`` (same input) as one matmul, their outputs concatenated.

    With ``pack``, on their weights concatenated and prepacked in oneDNN's blocked layout where torch has it
    (bit-identical to ``F.linear`` on the embedded model; measured 2.6x faster for 2 rows and 1.6x for 80 in
    bfloat16 on avx512_bf16, 3-4x in float32: the weights stream in the order the kernel reads them). The packed
    weights are a second copy of the model's; without ``pack`` (or where packing fails) each layer is
    ``F.linear`` on its own weight.
    """

    def __init__(self, modules: list[Any], pack: bool) -> None:
        import torch

        self.parts = [(m.weight, m.bias) for m in modules]
        self.packed = self.bias = None
        if pack:
            weight = torch.cat([w for w, _ in self.parts]) if len(modules) > 1 else modules[0].weight
            biases = [b for _, b in self.parts]
            self.bias = None if biases[0] is None else torch.cat(biases) if len(biases) > 1 else biases[0]
            self.packed = _prepack(weight, self.bias)

    def __call__(self, x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if self.packed is None:
            outs = [F.linear(x, w, b) for w, b in self.parts]
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        if x.shape[0] == 1:  # oneDNN's one-row path on a prepacked weight is ~100x slower than two rows
            return torch.ops.mkldnn._linear_pointwise(torch.cat([x, x]), self.packed, self.bias, "none", [], "")[:1]
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def _can_pack(linears: list[Any]) -> bool:
    """Whether a prepacked copy of these layers' weights fits in half the memory available now."""
    size = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    available = _available_memory()
    return available is None or size <= available // 2


def _available_memory() -> int | None:
    """Bytes of memory available for new allocations (Linux: MemAvailable, page cache included); None: unknown."""
    import os

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - neither Linux nor POSIX
        return None


def _prepack(weight: Any, bias: Any) -> Any:
    """``weight`` reordered for oneDNN's linear, or None where torch has no such op or it disagrees with
    ``F.linear`` on a probe (then the plain weight is used)."""
    import torch
    import torch.nn.functional as F

    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, PACK_BATCH)
        probe = torch.randn((3, weight.shape[1]), generator=torch.Generator().manual_seed(0)).to(weight.dtype)
        got = torch.ops.mkldnn._linear_pointwise(probe, packed, bias, "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):  # pragma: no cover - torch without oneDNN
        return None
    tolerance = 1e-2 if weight.dtype in (torch.bfloat16, torch.float16) else 1e-4
    return (
        packed
        if torch.allclose(got.float(), F.linear(probe, weight, bias).float(), rtol=tolerance, atol=tolerance)
        else None
    )


class LlamaDecoder:
    """Prefill prompts, then one token per live row per :meth:`step`, rows leaving with :meth:`keep`.

    State of a call: ``P`` prompts with ``k`` sample slots each (slot ``p * k + j``); the live rows (``R``,
    in slot order) each know their slot. Per layer, the prompts' keys ``[P, kv_heads, head_dim, Lp]``
    (transposed) and values ``[P, kv_heads, Lp, head_dim]`` (``Lp``: the longest prompt, shorter ones masked),
    and the rows' generated keys/values ``[R, kv_heads, head_dim, capacity]`` / ``[R, kv_heads, capacity, head_dim]``.
    """

    def __init__(self, model: Any, pack: bool | None = None) -> None:
        """``pack``: prepack the weights for oneDNN (None: when a copy fits in half the available memory)."""
        inner, config = model.model, model.config
        self.embed, self.rotary = inner.embed_tokens.weight, inner.rotary_emb
        self.norm = (inner.norm.weight, inner.norm.variance_epsilon)
        pack = _can_pack(_linears(model)) if pack is None else pack
        self.head = _Linear([model.lm_head], pack)
        first = inner.layers[0].self_attn
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim, self.scaling = first.head_dim, first.scaling
        self.groups = self.heads // self.kv_heads
        self.split = [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim]
        self.intermediate = inner.layers[0].mlp.down_proj.in_features
        self.layers = [
            (
                (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                _Linear([layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj], pack),
                _Linear([layer.self_attn.o_proj], pack),
                (layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon),
                _Linear([layer.mlp.gate_proj, layer.mlp.up_proj], pack),
                _Linear([layer.mlp.down_proj], pack),
            )
            for layer in inner.layers
        ]

    def _mlp(self, x: Any, gate_up: _Linear, down: _Linear) -> Any:
        import torch.nn.functional as F

        both = gate_up(x)
        return down(F.silu(both[:, : self.intermediate]) * both[:, self.intermediate :])

    # ---- a call ---------------------------------------------------------------------------------------------------
    def start(self, prompts: list[list[int]], k: int) -> Any:
        """Prefill ``prompts`` (token ids, no padding) for ``k`` samples each; returns the first step's logits
        ``[len(prompts) * k, vocab]`` (each prompt's last-position logits, ``k`` times, prompt-major)."""
        import torch
        import torch.nn.functional as F

        device = self.embed.device
        lengths = [len(p) for p in prompts]
        if min(lengths) < 1:
            raise ValueError("every prompt needs at least one token")
        count, longest = len(prompts), max(lengths)
        ids = torch.tensor([t for p in prompts for t in p], device=device)
        positions = torch.cat([torch.arange(n, device=device) for n in lengths])
        hidden = F.embedding(ids, self.embed)
        cos, sin = (c[0, :, None, :] for c in self.rotary(hidden[None], positions[None]))
        shape = (len(self.layers), count, self.kv_heads)
        self.prefix_keys = hidden.new_zeros((*shape, self.head_dim, longest))
        self.prefix_values = hidden.new_zeros((*shape, longest, self.head_dim))
        ends = torch.tensor(lengths, device=device)
        self.prefix_bias = torch.zeros((count, longest), device=device)
        self.prefix_bias[torch.arange(longest, device=device)[None, :] >= ends[:, None]] = float("-inf")
        bounds = [0, *torch.tensor(lengths).cumsum(0).tolist()]
        for i, (norm_in, qkv, o_proj, norm_post, gate_up, down) in enumerate(self.layers):
            q, key, value = qkv(_rms_norm(hidden, *norm_in)).split(self.split, dim=-1)
            q = _rotate(q.reshape(-1, self.heads, self.head_dim), cos, sin)
            key = _rotate(key.reshape(-1, self.kv_heads, self.head_dim), cos, sin)
            value = value.reshape(-1, self.kv_heads, self.head_dim)
            out = hidden.new_empty((hidden.shape[0], self.heads, self.head_dim))
            for p, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
                kp, vp = key[a:b].transpose(0, 1), value[a:b].transpose(0, 1)  # [kv_heads, n, head_dim]
                self.prefix_keys[i, p, :, :, : b - a] = kp.transpose(-1, -2)
                self.prefix_values[i, p, :, : b - a] = vp
                out[a:b] = F.scaled_dot_product_attention(
                    q[a:b].transpose(0, 1)[None],
                    kp[None],
                    vp[None],
                    is_causal=True,
                    scale=self.scaling,
                    enable_gqa=self.groups > 1,
                )[0].transpose(0, 1)
            hidden = hidden + o_proj(out.view(hidden.shape[0], -1))
            hidden = hidden + self._mlp(_rms_norm(hidden, *norm_post), gate_up, down)
        last = ends.cumsum(0) - 1
        logits = self.head(_rms_norm(hidden[last], *self.norm))
        # the samples: k rows per prompt; their generated positions start after the prompt
        self.prompts, self.k = count, k
        self.slots = torch.arange(count * k, device=device)
        self.dense = True  # rows == slots (no row has left yet)
        self.positions = ends.repeat_interleave(k)
        self.length = 0
        self.keys = hidden.new_zeros((len(self.layers), count * k, self.kv_heads, self.head_dim, CAPACITY_STEP))
        self.values = hidden.new_zeros((len(self.layers), count * k, self.kv_heads, CAPACITY_STEP, self.head_dim))
        return logits.repeat_interleave(k, 0)

    def keep(self, rows: Any) -> None:
        """Keep only ``rows`` (indices into the live rows, ascending). Prompts with no row left are dropped, and
        the slots are renumbered: a prompt's live rows take its first slots, ``k`` becomes the most any prompt
        has (the per-prompt matmuls of the attention are as wide as that)."""
        import torch

        owners = (self.slots // self.k)[rows]  # ascending: rows stay in slot order
        self.positions = self.positions[rows]
        self.keys, self.values = self.keys[:, rows], self.values[:, rows]
        alive, counts = torch.unique_consecutive(owners, return_counts=True)
        if len(alive) < self.prompts:
            self.prefix_keys, self.prefix_values = self.prefix_keys[:, alive], self.prefix_values[:, alive]
            self.prefix_bias = self.prefix_bias[alive]
        prompt = torch.arange(len(alive), device=owners.device).repeat_interleave(counts)
        first = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]]).repeat_interleave(counts)
        self.prompts, self.k = len(alive), int(counts.max())
        self.slots = prompt * self.k + torch.arange(len(owners), device=owners.device) - first
        self.dense = len(owners) == self.prompts * self.k

    def step(self, tokens: Any) -> Any:
        """Feed one token per live row (``[R]``); returns the next logits ``[R, vocab]``."""
        import torch
        import torch.nn.functional as F

        rows = tokens.shape[0]
        if self.length == self.keys.shape[-1]:
            self._grow()
        hidden = F.embedding(tokens, self.embed)
        cos, sin = (c[0, :, None, :] for c in self.rotary(hidden[None], self.positions[None]))
        width = self.keys.shape[-1]
        generated = torch.zeros(width, device=hidden.device)
        generated[self.length + 1 :] = float("-inf")  # spare capacity
        bias = torch.cat([self.prefix_bias[self.slots // self.k], generated.expand(rows, width)], dim=1)
        bias = bias.view(rows, 1, 1, -1)
        t = self.length
        for i, (norm_in, qkv, o_proj, norm_post, gate_up, down) in enumerate(self.layers):
            q, key, value = qkv(_rms_norm(hidden, *norm_in)).split(self.split, dim=-1)
            q = _rotate(q.reshape(rows, self.heads, self.head_dim), cos, sin)
            self.keys[i, :, :, :, t] = _rotate(key.reshape(rows, self.kv_heads, self.head_dim), cos, sin)
            self.values[i, :, :, t] = value.reshape(rows, self.kv_heads, self.head_dim)
            hidden = hidden + o_proj(self._attention(i, q, bias))
            hidden = hidden + self._mlp(_rms_norm(hidden, *norm_post), gate_up, down)
        self.length += 1
        self.positions = self.positions + 1
        return self.head(_rms_norm(hidden, *self.norm))

    # ---- internals ------------------------------------------------------------------------------------------------
    def _grow(self) -> None:
        keys = self.keys.new_zeros((*self.keys.shape[:-1], self.keys.shape[-1] + CAPACITY_STEP))
        values = self.values.new_zeros((*self.values.shape[:3], self.values.shape[3] + CAPACITY_STEP, self.head_dim))
        keys[..., : self.length] = self.keys[..., : self.length]
        values[..., : self.length, :] = self.values[..., : self.length, :]
        self.keys, self.values = keys, values

    def _to_grid(self, x: Any) -> Any:
        """Rows ``[R, kv_heads, groups, n]`` → per prompt ``[P * kv_heads, k * groups, n]`` (empty slots: 0)."""
        if not self.dense:
            grid = x.new_zeros((self.prompts * self.k, *x.shape[1:]))
            grid[self.slots] = x
            x = grid
        p, k, h, g = self.prompts, self.k, self.kv_heads, self.groups
        return x.view(p, k, h, g, -1).transpose(1, 2).reshape(p * h, k * g, -1)

    def _from_grid(self, x: Any) -> Any:
        """Inverse of :meth:`_to_grid`: the live rows' ``[R, kv_heads, groups, n]``."""
        p, k, h, g = self.prompts, self.k, self.kv_heads, self.groups
        x = x.view(p, h, k, g, -1).transpose(1, 2).reshape(p * k, h, g, -1)
        return x if self.dense else x[self.slots]

    def _attention(self, layer: int, q: Any, bias: Any) -> Any:
        """One query token per row over its prompt's cached positions and its own generated ones (eager
        attention's arithmetic: scaled scores, additive mask, float32 softmax, weights in the model's dtype)."""
        import torch

        rows, h, g, d = q.shape[0], self.kv_heads, self.groups, self.head_dim
        q = q.view(rows, h, g, d)
        prefix_keys = self.prefix_keys[layer].view(self.prompts * h, d, -1)
        prefix = self._from_grid(torch.bmm(self._to_grid(q), prefix_keys))
        own = torch.bmm(q.reshape(rows * h, g, d), self.keys[layer].view(rows * h, d, -1)).view(rows, h, g, -1)
        scores = torch.cat([prefix, own], dim=-1).float().mul_(self.scaling).add_(bias)
        weights = scores.softmax(dim=-1).to(q.dtype)
        split = prefix.shape[-1]
        out = torch.bmm(
            self._to_grid(weights[..., :split]), self.prefix_values[layer].view(self.prompts * h, split, d)
        )
        own_out = torch.bmm(weights[..., split:].reshape(rows * h, g, -1), self.values[layer].view(rows * h, -1, d))
        out = self._from_grid(out).float().add_(own_out.view(rows, h, g, d).float())
        return out.to(q.dtype).reshape(rows, self.heads * d)
