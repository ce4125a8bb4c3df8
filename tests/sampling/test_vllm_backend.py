"""vLLM backend: lazy import always checked; a real run only where vllm is importable (GPU machines)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from codepref.errors import BackendError
from codepref.sampling import GenerationParams, SampleConfig
from codepref.sampling.backends import load_backend

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_importing_codepref_sampling_does_not_import_heavy_engines():
    code = "import sys, codepref.sampling; print(sorted(m for m in ('vllm', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_missing_vllm_is_a_clear_backend_error():
    with pytest.raises(BackendError, match="pip install vllm"):
        load_backend(SampleConfig(backend="vllm"))


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_vllm_generates_n_per_prompt_deterministically(tiny_model_dir):
    backend = load_backend(SampleConfig(backend="vllm", model=tiny_model_dir, gpu_memory_utilization=0.3))
    params = GenerationParams(temperature=1.0, top_p=1.0, max_new_tokens=8)
    a = backend.generate(["def f():\n", [{"role": "user", "content": "hi"}]], 3, params, [1, 2])
    b = backend.generate(["def f():\n", [{"role": "user", "content": "hi"}]], 3, params, [1, 2])
    assert [len(x) for x in a] == [3, 3] and a == b
