"""vLLM offline engine (optional extra, GPU): ``LLM.generate`` / ``LLM.chat`` with per-prompt seeds.

``vllm`` is imported only here, when this backend is chosen.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...errors import BackendError
from ..extraction import cut_after_code_block, truncate_at_stops
from ..prompts import Prompt
from .base import GenerationBackend, GenerationParams

if TYPE_CHECKING:
    from ..config import SampleConfig

logger = logging.getLogger(__name__)


class VLLMBackend(GenerationBackend):
    """All prompts of a call go to the engine at once; vLLM schedules the batch itself."""

    name = "vllm"

    def __init__(self, llm: Any, *, model_id: str = "", revision: str | None = None) -> None:
        self.llm, self.model_id, self.revision = llm, model_id, revision

    @classmethod
    def from_config(cls, cfg: SampleConfig) -> VLLMBackend:
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError("backend 'vllm' needs vLLM (a GPU extra): pip install vllm") from e
        from ..models import resolve_model

        llm = LLM(
            model=resolve_model(cfg.model),
            revision=cfg.revision,
            dtype=cfg.dtype,
            seed=cfg.seed,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            tensor_parallel_size=cfg.tensor_parallel_size,
        )
        return cls(llm, model_id=cfg.model, revision=cfg.revision)

    def has_chat_template(self) -> bool:
        return bool(getattr(self.llm.get_tokenizer(), "chat_template", None))

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model_id, "revision": self.revision}

    def _sampling_params(self, n: int, params: GenerationParams, seed: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature else 1.0,
            max_tokens=params.max_new_tokens,
            seed=seed,
            stop=list(params.stop) or None,
        )

    def generate(self, prompts: list[Prompt], n: int, params: GenerationParams, seeds: list[int]) -> list[list[str]]:
        results: list[list[str] | None] = [None] * len(prompts)
        for want_chat in (False, True):
            idx = [i for i, p in enumerate(prompts) if isinstance(p, list) == want_chat]
            if not idx:
                continue
            sps = [self._sampling_params(n, params, seeds[i]) for i in idx]
            batch = [prompts[i] for i in idx]
            if want_chat:
                prefill = batch[0][-1]["role"] == "assistant"
                outs = self.llm.chat(
                    batch,
                    sps,
                    use_tqdm=False,
                    add_generation_prompt=not prefill,
                    continue_final_message=prefill,
                )
            else:
                outs = self.llm.generate(batch, sps, use_tqdm=False)
            for i, out in zip(idx, outs, strict=True):
                texts = [truncate_at_stops(c.text, params.stop) for c in sorted(out.outputs, key=lambda c: c.index)]
                results[i] = [cut_after_code_block(t) for t in texts] if params.stop_at_code_block else texts
        return [r or [] for r in results]
