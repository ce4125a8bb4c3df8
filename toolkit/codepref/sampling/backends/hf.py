"""🤗 transformers backend: batched decoding with left padding, a shared prompt prefill and
finished sequences leaving the batch.

What makes it fast on a CPU (benchmarks/sampling.py, figures in benchmarks/README.md):

- ``dtype="auto"`` runs bfloat16 where the CPU has native bf16 matmuls (avx512_bf16 / AMX), on every
  core the process may use, 128 sequences per call (n × a shard of problems);
- our own decode loop instead of ``model.generate``: each prompt is prefilled once and its cache
  copied n times, and a finished sequence stops costing a step (rows are dropped from the batch and
  its KV cache once they are a tenth of it); ``generate`` spent about half its steps on finished rows;
- the next token is drawn among the nucleus candidates only (:func:`nucleus`: exact top-p from a
  top-k prefilter, no sort of the 49k vocabulary, no multinomial over it — that draw alone was a
  quarter of a step);
- on CPU, a Llama-architecture model (the embedded SmolLM2, Qwen2, Mistral, ...) runs through
  :mod:`.llama_decode`: prompts prefilled packed, each prompt's KV cache read once for all its samples,
  weights prepacked for oneDNN, no per-step module machinery (transformers' forward spent more than half a
  step on attention over per-sample copies of the prompt, cache concatenation and framework work);
- a chat answer stops at its closing code fence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...errors import BackendError
from ..extraction import cut_after_code_block, truncate_at_stops
from ..prompts import Prompt
from .base import GenerationBackend, GenerationParams, derive_seed
from .llama_decode import llama_decoder

if TYPE_CHECKING:
    from ..config import SampleConfig

logger = logging.getLogger(__name__)


NUCLEUS_PREFILTER = 256  # candidates taken with topk before falling back to a full sort
# finished rows leave the batch (and its KV cache) once they are this share of it: every compaction copies
# the whole cache, and a finished row costs only its share of one step until then
COMPACT_SHARE = 0.1


def auto_dtype(device: str) -> str:
    """``dtype="auto"``: bfloat16 on a CPU with native bf16 matmuls (avx512_bf16 / AMX: ~4x float32 per core,
    benchmarks/sampling.py), float32 on other CPUs; on GPU what the model declares (``"auto"``)."""
    import torch

    if device.startswith("cpu"):
        try:
            return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
        except (AttributeError, RuntimeError):  # pragma: no cover - a torch without mkldnn
            return "float32"
    return "auto"


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's quota of cores)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def nucleus(scaled: Any, top_p: float, k: int = NUCLEUS_PREFILTER) -> tuple[Any, Any]:
    """The exact top-p nucleus of every row of ``scaled`` (logits already divided by the temperature).

    Returns ``(token ids, probabilities)`` of shape ``[rows, m]``: each row's candidates in descending
    probability, with the probability (of the full softmax, float64) of those in the nucleus, 0 for the others.
    The nucleus is the smallest prefix of the tokens sorted by probability whose mass reaches ``top_p`` —
    what transformers' ``TopPLogitsWarper`` keeps — but found without sorting the whole vocabulary: the
    ``k`` most likely tokens are taken with ``topk`` and their exact probabilities from the row's
    log-sum-exp; when they hold at least ``top_p`` of the mass the nucleus lies among them (it is a prefix
    of the sorted order); otherwise (a flat distribution, rare) every row is sorted in full.
    """

    kk = min(k, scaled.shape[-1])
    top, idx = scaled.topk(kk, dim=-1)
    peak = top[:, :1]
    # the candidates' probabilities in float64 (the normaliser: float32 exps, pairwise-summed by torch), so
    # a token is not moved across the top_p boundary by rounding (tested against a float64 full sort)
    total = (scaled - peak).exp_().sum(dim=-1, keepdim=True).double()
    probs = (top - peak).double().exp() / total
    if bool((probs.sum(dim=-1) < top_p).any()):
        top, idx = scaled.sort(dim=-1, descending=True)
        probs = (top - peak).double().exp() / total
    keep = (probs.cumsum(dim=-1) - probs) < top_p  # mass before a token < top_p: the token is in the nucleus
    return idx, probs * keep


def next_tokens(logits: Any, params: GenerationParams, generator: Any) -> Any:
    """One decode step's tokens: greedy, or a draw from the tempered distribution restricted to the nucleus.

    Sampling among the nucleus candidates is the same distribution as masking the rest of the vocabulary
    and sampling from all of it, at a fraction of the cost (``torch.multinomial`` over 49k columns was a
    quarter of a decode step).
    """
    import torch

    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    scaled = logits.float() / params.temperature
    if params.top_p >= 1:
        return torch.multinomial(scaled.softmax(dim=-1), 1, generator=generator).squeeze(1)
    idx, probs = nucleus(scaled, params.top_p)
    choice = torch.multinomial(probs, 1, generator=generator)
    return idx.gather(-1, choice).squeeze(1)


class TransformersBackend(GenerationBackend):
    """Samples with its own decode loop over the model (see the module docstring); ``batch_size`` sequences per
    call (prompts × n)."""

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 128,
        model_id: str = "",
        revision: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.threads = threads  # torch threads while generating (None: leave torch's setting)
        self.model_id, self.revision = model_id or getattr(model, "name_or_path", ""), revision
        tokenizer.padding_side = "left"  # decoder-only models continue the right end of the prompt
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.generated_tokens = 0  # running count of new tokens, for throughput reports
        self._llama: Any = None  # the LlamaDecoder of this model, False when it has none (decided on first use)

    @classmethod
    def from_config(cls, cfg: SampleConfig) -> TransformersBackend:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - torch is an extra
            raise BackendError("the transformers backend needs torch and transformers") from e
        from ..models import resolve_model

        path = resolve_model(cfg.model)
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = cfg.dtype if cfg.dtype != "auto" else auto_dtype(device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, revision=cfg.revision)
            model = AutoModelForCausalLM.from_pretrained(
                path, revision=cfg.revision, dtype=dtype if dtype == "auto" else getattr(torch, dtype)
            )
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load model {cfg.model!r} from {path!r}: {e}") from e
        model.to(device).eval()
        threads = cfg.threads if cfg.threads is not None else (available_cores() if device == "cpu" else None)
        return cls(
            model, tokenizer, batch_size=cfg.batch_size, model_id=cfg.model, revision=cfg.revision, threads=threads
        )

    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def identity(self) -> dict:
        """What decides the samples besides the config: the engine, the model, the dtype it runs in and the
        implementation of its forward pass (their arithmetic differs in rounding)."""
        return {
            "backend": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "threads": self.threads,
            "forward": "llama_decode" if self._decoder() else "transformers",
        }

    def render(self, prompt: Prompt) -> str:
        """A chat prompt rendered with the chat template; a string prompt unchanged."""
        if isinstance(prompt, str):
            return prompt
        if not self.has_chat_template():
            raise BackendError(f"model {self.model_id!r} has no chat template; use chat=false")
        prefill = prompt[-1]["role"] == "assistant"
        return self.tokenizer.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )

    def _calls(self, count: int, n: int, seeds: list[int]) -> list[tuple[list[int], int, int]]:
        """Plan calls as (prompt indices, sequences per prompt, seed), ≤ batch_size sequences each."""
        if n >= self.batch_size:
            calls = []
            for i in range(count):
                for part, start in enumerate(range(0, n, self.batch_size)):
                    calls.append(([i], min(self.batch_size, n - start), derive_seed(seeds[i], part)))
            return calls
        per_call = max(1, self.batch_size // n)
        return [
            (list(range(a, min(a + per_call, count))), n, derive_seed(*seeds[a : a + per_call]))
            for a in range(0, count, per_call)
        ]

    def _decode(
        self, prompts: list[list[int]], k: int, params: GenerationParams, seed: int, eos: set[int]
    ) -> list[list[int]]:
        """Sample ``k`` continuations of every prompt (token ids); returns the new token ids per sequence.

        Our own decode loop rather than ``model.generate``: a finished sequence leaves the batch (its rows
        are dropped from the KV cache once they are a tenth of it), so steps are not spent on sequences that
        are done. On CPU the cost of a step grows with the rows in it, and answers end at very different
        lengths (a closed code fence after 40 tokens, or 128), so ``generate`` spent about half its steps on
        finished rows. Each prompt is also encoded once for its ``k`` samples (``num_return_sequences``
        would prefill k identical copies).
        """
        import torch

        steps = self._steps()
        gen = torch.Generator(device=self.model.device).manual_seed(seed)
        rows = len(prompts) * k
        tokens: list[list[int]] = [[] for _ in range(rows)]
        texts_cache: dict[int, str] = {}
        with torch.inference_mode():
            logits = steps.start(prompts, k)
            active_rows, alive = list(range(rows)), [True] * rows  # finished rows stay until the next compaction
            for step in range(params.max_new_tokens):
                nxt = next_tokens(logits, params, gen)
                for j, (row, tok) in enumerate(zip(active_rows, nxt.tolist(), strict=True)):
                    if not alive[j]:
                        continue
                    if tok in eos:
                        alive[j] = False
                        continue
                    tokens[row].append(tok)
                    if self._stopped(tokens[row], params, texts_cache, row):
                        alive[j] = False
                keep = [j for j, a in enumerate(alive) if a]
                if not keep or step == params.max_new_tokens - 1:
                    break
                if len(alive) - len(keep) >= COMPACT_SHARE * len(alive):
                    sel = torch.tensor(keep, device=nxt.device)
                    steps.keep(sel)
                    nxt = nxt[sel]
                    active_rows, alive = [active_rows[j] for j in keep], [True] * len(keep)
                logits = steps.step(nxt)
        self.generated_tokens += sum(len(t) for t in tokens)
        return tokens

    def close(self) -> None:
        self._llama = None  # its prepacked weights (a copy of the model's linear layers)

    def _decoder(self) -> Any:
        """This model's :class:`.LlamaDecoder` (built on first use), or None."""
        if self._llama is None:
            self._llama = llama_decoder(self.model) or False
        return self._llama or None

    def _steps(self) -> Any:
        """The forward pass of a call: :class:`.LlamaDecoder` for a Llama-architecture model on CPU, else the
        model's own forward over transformers' cache (:class:`TransformersSteps`)."""
        return self._decoder() or TransformersSteps(self.model, self.tokenizer.pad_token_id)

    def _stopped(self, toks: list[int], params: GenerationParams, cache: dict[int, str], row: int) -> bool:
        """Whether a sequence hit a stop string or (chat code) closed its code fence."""
        if not params.stop and not params.stop_at_code_block:
            return False
        piece = self.tokenizer.decode(toks[-1:], skip_special_tokens=True)
        if params.stop_at_code_block and "`" in piece:
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            if text.count("```") >= 2:
                return True
        if params.stop:
            longest = max(len(s) for s in params.stop)
            tail = self.tokenizer.decode(toks[-(longest + 2) :], skip_special_tokens=True)
            return any(s in tail for s in params.stop)
        return False

    def generate(self, prompts: list[Prompt], n: int, params: GenerationParams, seeds: list[int]) -> list[list[str]]:
        import torch

        if self.threads is None or torch.get_num_threads() == self.threads:
            return self._generate(prompts, n, params, seeds)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._generate(prompts, n, params, seeds)
        finally:
            torch.set_num_threads(previous)

    def _generate(self, prompts: list[Prompt], n: int, params: GenerationParams, seeds: list[int]) -> list[list[str]]:
        if params.temperature == 0 and n > 1:  # greedy: one decode per prompt, repeated n times
            return [row * n for row in self._generate(prompts, 1, params, seeds)]
        texts = [self.render(p) for p in prompts]
        out: list[list[str]] = [[] for _ in prompts]
        eos = {self.tokenizer.eos_token_id, *_as_list(self.model.generation_config.eos_token_id)} - {None}
        for indices, k, seed in self._calls(len(prompts), n, seeds):
            add_special = isinstance(prompts[indices[0]], str)
            enc = self.tokenizer([texts[i] for i in indices], add_special_tokens=add_special)
            generated = self._decode(enc["input_ids"], k, params, seed, eos)
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            for j, text in enumerate(decoded):
                text = truncate_at_stops(text, params.stop)
                out[indices[j // k]].append(cut_after_code_block(text) if params.stop_at_code_block else text)
        return out


class TransformersSteps:
    """A call's forward passes through the model's own forward and transformers' ``DynamicCache`` (any
    architecture, any device): the prompts left-padded and prefilled once, the cache copied ``k`` times."""

    def __init__(self, model: Any, pad_id: int) -> None:
        import inspect

        self.model, self.pad_id = model, pad_id
        # transformers >= 5 names the KV cache argument and output `cache` (`past_key_values` before)
        self.params = inspect.signature(model.forward).parameters
        self.kw = "cache" if "cache" in self.params else "past_key_values"

    def start(self, prompts: list[list[int]], k: int) -> Any:
        import torch

        device, width = self.model.device, max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding
        # the LM head on the last position only, where the model's forward takes logits_to_keep
        last = {"logits_to_keep": 1} if "logits_to_keep" in self.params else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **last)
        self.cache = getattr(out, self.kw)
        self.cache.batch_repeat_interleave(k)
        self.mask = mask.repeat_interleave(k, 0)
        self.positions = positions[:, -1].repeat_interleave(k) + 1
        return out.logits[:, -1].repeat_interleave(k, 0)

    def keep(self, rows: Any) -> None:
        self.cache.batch_select_indices(rows)
        self.mask, self.positions = self.mask[rows], self.positions[rows]

    def step(self, tokens: Any) -> Any:
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            use_cache=True,
            **{self.kw: self.cache},
        )
        self.cache, self.positions = getattr(out, self.kw), self.positions + 1
        return out.logits[:, -1]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
