"""The sampling stage (SPEC §4.2): prompts → model samples → executable programs (and tests).

>>> from codepref.sampling import SampleConfig, sample
>>> ds = sample(problems, SampleConfig(n=8, temperature=0.6))  # adds completions, samples
"""

from __future__ import annotations

from .backends import GenerationBackend, GenerationParams, derive_seed, load_backend
from .config import SampleConfig
from .extraction import extract_code, syntax_ok
from .models import EMBEDDED_MODELS, resolve_model
from .prompts import code_prompt, codedpo_test_prompt, dstc_prompt, parse_test_units, split_sections
from .seeds import SeedConfig, seed_problems
from .stage import build_request, output_columns, sample

__all__ = [
    "EMBEDDED_MODELS",
    "GenerationBackend",
    "GenerationParams",
    "SampleConfig",
    "SeedConfig",
    "build_request",
    "code_prompt",
    "codedpo_test_prompt",
    "derive_seed",
    "dstc_prompt",
    "extract_code",
    "load_backend",
    "output_columns",
    "parse_test_units",
    "resolve_model",
    "sample",
    "seed_problems",
    "split_sections",
    "syntax_ok",
]
