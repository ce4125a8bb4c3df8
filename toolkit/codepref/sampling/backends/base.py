"""The generation backend contract: one abstract method, several engines (SPEC §4.2)."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..prompts import Prompt


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters shared by every backend (``temperature=0`` means greedy)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    stop_at_code_block: bool = False  # end a chat answer at its first closing ``` fence
    extra: dict = field(default_factory=dict, compare=False)


def derive_seed(seed: int, *keys: object) -> int:
    """A 31-bit seed from a base seed and keys (e.g. a task_id): stable across runs and machines."""
    blob = json.dumps([seed, *keys], default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


class GenerationBackend(ABC):
    """Turns prompts into ``n`` sampled continuations each.

    A prompt is a string (continued as is) or a list of chat messages (rendered with the
    model's chat template; a final assistant message is continued). ``seeds`` holds one seed
    per prompt; a backend that cannot seed per prompt derives one seed per call from them.
    Outputs are the generated text only, stop strings removed.
    """

    name: str = "base"

    @abstractmethod
    def generate(self, prompts: list[Prompt], n: int, params: GenerationParams, seeds: list[int]) -> list[list[str]]:
        """``n`` continuations for each prompt, in prompt order."""

    def has_chat_template(self) -> bool:
        """Whether chat-message prompts are supported (decides ``chat="auto"``)."""
        return False

    def identity(self) -> dict:
        """What identifies this backend's outputs (model, revision, engine), for provenance and caching."""
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine (GPU memory, HTTP sessions)."""
