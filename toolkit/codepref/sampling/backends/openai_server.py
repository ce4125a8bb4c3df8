"""Any OpenAI-compatible server (vLLM serve, TGI, llama.cpp server, …) over plain HTTP.

String prompts go to ``/completions``, chat prompts to ``/chat/completions``; both with ``n``,
``stop`` and a per-prompt ``seed``. A chat prompt ending with an assistant message is sent with
vLLM's ``continue_final_message`` extension. The API key is read from an environment variable
at call time and is never logged. Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ...errors import BackendError
from ..extraction import cut_after_code_block, truncate_at_stops
from ..prompts import Prompt
from .base import GenerationBackend, GenerationParams

if TYPE_CHECKING:
    from ..config import SampleConfig

logger = logging.getLogger(__name__)
_RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIBackend(GenerationBackend):
    """Sends one request per prompt (``n`` choices each), ``concurrency`` requests at a time."""

    name = "openai"

    def __init__(
        self,
        model: str,
        api_base: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        concurrency: int = 8,
        retries: int = 3,
        chat: bool = True,
    ) -> None:
        self.model, self.api_base = model, api_base.rstrip("/")
        self._api_key = api_key  # kept private; repr and identity never show it
        self.timeout, self.concurrency, self.retries, self.chat = timeout, concurrency, retries, chat

    @classmethod
    def from_config(cls, cfg: SampleConfig) -> OpenAIBackend:
        return cls(
            cfg.model,
            cfg.api_base,
            api_key=cfg.api_key(),
            timeout=cfg.request_timeout,
            chat=cfg.chat_mode is not False,
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, api_base={self.api_base!r})"

    def has_chat_template(self) -> bool:
        return self.chat

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model, "api_base": self.api_base}

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_base}{path}"
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(payload).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                body = e.read()[:300].decode(errors="replace")
                if e.code not in _RETRY_STATUS or attempt == self.retries:
                    raise BackendError(f"{url} answered HTTP {e.code}: {body}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise BackendError(f"cannot reach {url}: {e}") from None
            except json.JSONDecodeError as e:
                raise BackendError(f"{url} returned invalid JSON: {e}") from None
            delay = 0.5 * 2**attempt
            logger.warning("%s failed (attempt %d), retrying in %.1f s", url, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _one(self, prompt: Prompt, n: int, params: GenerationParams, seed: int) -> list[str]:
        payload: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        if params.stop:
            payload["stop"] = list(params.stop)
        if isinstance(prompt, str):
            answer = self._post("/completions", {**payload, "prompt": prompt})
            texts = [(c.get("index", i), c.get("text") or "") for i, c in enumerate(answer.get("choices", []))]
        else:
            payload["messages"] = prompt
            if prompt and prompt[-1]["role"] == "assistant":
                payload.update(continue_final_message=True, add_generation_prompt=False)
            answer = self._post("/chat/completions", payload)
            texts = [
                (c.get("index", i), (c.get("message") or {}).get("content") or "")
                for i, c in enumerate(answer.get("choices", []))
            ]
        if len(texts) != n:
            raise BackendError(f"{self.api_base} returned {len(texts)} choices, expected n={n}")
        out = [truncate_at_stops(t, params.stop) for _, t in sorted(texts, key=lambda x: x[0])]
        return [cut_after_code_block(t) for t in out] if params.stop_at_code_block else out

    def generate(self, prompts: list[Prompt], n: int, params: GenerationParams, seeds: list[int]) -> list[list[str]]:
        if len(prompts) <= 1 or self.concurrency <= 1:
            return [self._one(p, n, params, s) for p, s in zip(prompts, seeds, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda ps: self._one(ps[0], n, params, ps[1]), zip(prompts, seeds, strict=True)))
