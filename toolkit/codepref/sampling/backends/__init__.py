"""Generation backends behind one interface; each engine is imported only when chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConfigError
from .base import GenerationBackend, GenerationParams, derive_seed

if TYPE_CHECKING:
    from ..config import SampleConfig

__all__ = ["GenerationBackend", "GenerationParams", "derive_seed", "load_backend"]


def load_backend(cfg: SampleConfig) -> GenerationBackend:
    """The backend ``cfg.backend`` names, built from ``cfg`` (heavy imports happen here, not at import)."""
    if cfg.backend == "transformers":
        from .hf import TransformersBackend

        return TransformersBackend.from_config(cfg)
    if cfg.backend == "vllm":
        from .vllm_engine import VLLMBackend

        return VLLMBackend.from_config(cfg)
    if cfg.backend == "openai":
        from .openai_server import OpenAIBackend

        return OpenAIBackend.from_config(cfg)
    raise ConfigError(f"unknown backend {cfg.backend!r}")
