"""The decode step of the transformers backend on CPU: a KV cache that grows in place and attention for
one query token per sequence.

Measured on the embedded model (bfloat16, 2 cores, 80 sequences, ~200 cached tokens; benchmarks/README.md):
torch's CPU flash-attention kernel, built for long queries, and the ``DynamicCache`` concatenation (the
whole cache copied every step) took more than half of a decode step, more than its weight matmuls. Here a step's
attention is two batched matmuls over the key/value heads (grouped-query heads share their key/value
rows: no copy per query head), and the cache writes each new position into spare capacity.

The arithmetic is transformers' eager attention (scores in the model's dtype, softmax in float32); prefill,
and anything this path does not cover (soft-capping, attention sinks, position biases, GPU), goes to
transformers' SDPA attention unchanged.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

DECODE_ATTENTION = "codepref_decode"  # the name under which transformers dispatches to decode_attention
CAPACITY_STEP = 32  # positions added to a cache layer when it is full (attention reads them all, masked)


def decode_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """An ``AttentionInterface`` function: one query token per sequence on CPU as batched matmuls; otherwise SDPA.

    ``query`` is ``[batch, heads, q_len, head_dim]``, ``key``/``value`` ``[batch, kv_heads, kv_len, head_dim]``,
    ``attention_mask`` a boolean ``[batch, 1, q_len, kv_len]`` (True: attend) or None; returns
    ``[batch, q_len, heads, head_dim]`` as transformers' attention functions do. When ``key``/``value`` are the
    live views of a growing cache layer's buffers, the matmuls read the buffers whole (the positions past
    ``kv_len`` masked out): a view's rows are not evenly spaced, and ``bmm`` would copy it every step.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    plain = all(kwargs.get(name) is None for name in ("softcap", "s_aux", "sinks", "position_bias"))
    if (
        q_len != 1
        or not plain
        or query.device.type != "cpu"
        or heads % kv_heads
        or (attention_mask is not None and attention_mask.dtype != torch.bool)
        or (module.training and dropout > 0)
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups, rows = heads // kv_heads, batch * kv_heads
    scale = dim**-0.5 if scaling is None else scaling
    keys_t, values = _buffers(key, value)
    width = keys_t.shape[-1]
    q = query.reshape(rows, groups, dim)
    scores = torch.bmm(q, keys_t.reshape(rows, dim, width)).view(batch, kv_heads, groups, width).float().mul_(scale)
    if width > kv_len:
        scores[..., kv_len:] = float("-inf")
    if attention_mask is not None:
        scores[..., :kv_len].masked_fill_(~attention_mask, float("-inf"))
    weights = scores.softmax(dim=-1).to(values.dtype).view(rows, groups, width)
    out = torch.bmm(weights, values.reshape(rows, width, dim))
    return out.view(batch, 1, heads, dim), None


def _buffers(key: Any, value: Any) -> tuple[Any, Any]:
    """``(keys transposed [b, h, d, width], values [b, h, width, d])`` to multiply: a growing cache layer's whole
    buffers when ``key``/``value`` are its live views (``width`` ≥ their length), else contiguous copies."""
    kt, v = key.transpose(-1, -2), value
    kbuf, vbuf = _GROWN.get(kt.data_ptr()), _GROWN.get(v.data_ptr())
    if (
        kbuf is not None
        and vbuf is not None
        and kbuf.shape[:3] == kt.shape[:3]
        and kbuf.stride() == kt.stride()
        and vbuf.shape[:2] == v.shape[:2]
        and vbuf.shape[3] == v.shape[3]
        and vbuf.stride() == v.stride()
        and kbuf.shape[3] == vbuf.shape[2] >= kt.shape[3]
        and kbuf.dtype == kt.dtype
        and vbuf.dtype == v.dtype
    ):
        return kbuf, vbuf
    return kt.contiguous(), v.contiguous()


# the buffers of live growing cache layers by address (weak: an entry goes with its buffer); a key/value whose address
# and strides match one is a view of its first positions, and decode_attention may read the buffer whole
_GROWN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def register_decode_attention() -> None:
    """Make ``DECODE_ATTENTION`` a transformers attention implementation (masks as SDPA's: boolean)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(DECODE_ATTENTION, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(DECODE_ATTENTION, sdpa_mask)


def use_decode_attention(model: Any) -> bool:
    """Switch a CPU model that uses SDPA attention to ``decode_attention``; False (unchanged) for any other."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa" or model.device.type != "cpu":
        return False
    try:
        register_decode_attention()
        model.set_attn_implementation(DECODE_ATTENTION)
    except (ImportError, AttributeError, ValueError, NotImplementedError):  # pragma: no cover - older transformers
        return False
    return model.config._attn_implementation == DECODE_ATTENTION


def growing_cache(config: Any) -> Any:
    """transformers' ``DynamicCache`` for ``config``, its full-attention layers growing in place."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    growing = growing_layer_class()
    cache = DynamicCache(config=config)
    cache.layers = [growing() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


@functools.cache
def growing_layer_class() -> type:
    """The cache layer class of :func:`growing_cache` (built on first use: transformers is an optional import)."""
    from transformers.cache_utils import DynamicLayer

    class _GrowingLayer(DynamicLayer):
        """A ``DynamicLayer`` with spare capacity: a step writes its keys/values in place instead of concatenating
        (copying) the whole cache. Keys are stored transposed (``[batch, kv_heads, head_dim, capacity]``), so the
        live ``keys`` (a ``[batch, kv_heads, length, head_dim]`` view) is a matrix the CPU's batched matmul reads
        as is (a view of a ``[.., capacity, head_dim]`` buffer was copied by every ``bmm``: 4x slower)."""

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self._kt = self._v = None
            self._length = 0

        def _views(self) -> None:
            self.keys = self._kt[..., : self._length].transpose(-1, -2)
            self.values = self._v[..., : self._length, :]

        def _reserve(self, key_states: Any, value_states: Any, length: int) -> None:
            if self._kt is not None and length <= self._kt.shape[-1]:
                return
            capacity = length + CAPACITY_STEP
            *lead, _, kdim = key_states.shape
            # zeros, not empty: the spare positions are read (and masked) by decode_attention, 0 × garbage may be NaN
            kt = key_states.new_zeros((*lead, kdim, capacity))
            v = value_states.new_zeros((*value_states.shape[:-2], capacity, value_states.shape[-1]))
            if self._length:
                kt[..., : self._length] = self._kt[..., : self._length]
                v[..., : self._length, :] = self._v[..., : self._length, :]
            self._kt, self._v = kt, v
            self._register()

        def _register(self) -> None:
            _GROWN[self._kt.data_ptr()] = self._kt
            _GROWN[self._v.data_ptr()] = self._v

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, end = self._length, self._length + key_states.shape[-2]
            self._reserve(key_states, value_states, end)
            self._kt[..., start:end] = key_states.transpose(-1, -2)
            self._v[..., start:end, :] = value_states
            self._length = end
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self._length if self.is_initialized else 0

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.get_seq_length() > 0:
                self._kt = self._kt.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
                self._register()
                self._views()

        def batch_select_indices(self, indices: Any) -> None:
            if self.get_seq_length() > 0:
                self._kt, self._v = self._kt[indices], self._v[indices]
                self._register()
                self._views()

        def reorder_cache(self, beam_idx: Any) -> None:
            if self.get_seq_length() > 0:
                self.batch_select_indices(beam_idx.to(self._kt.device))

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                super().crop(tokens_to_remove)  # raises: the legacy form is not supported
            if tokens_to_remove and self.get_seq_length() > 0:
                self._length = max(0, self._length - abs(tokens_to_remove))
                self._views()

        def reset(self) -> None:
            self._kt = self._v = None
            self._length = 0
            super().reset()

    return _GrowingLayer
