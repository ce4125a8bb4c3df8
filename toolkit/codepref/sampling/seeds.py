"""CodeDPO §3.1 seed construction: code snippet → programming concepts → task instruction.

CodeDPO builds its problems from real code: an LLM first names the key concepts of a snippet
(Appendix B, LLM Prompt 1), then writes a new, self-contained task from those concepts (LLM
Prompt 2). The resulting problems have no ground-truth tests; CodeDPO validates samples
against model-generated tests (``sample --target tests``) with self-validation scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset

from ..config import config_to_dict
from ..dataset_io import read_dataset
from ..errors import ConfigError, DataError
from ..provenance import with_provenance
from .backends import GenerationParams, derive_seed, load_backend
from .config import SampleConfig

CONCEPT_TEMPLATE = """Extract key programming concepts from a given code snippet collected from the open source \
repositories. Present the concepts as a comma separated list.

## Example 1
### Snippet
```python
def moving_average(values, k):
    window, total = collections.deque(), 0
    for v in values:
        window.append(v)
        total += v
        if len(window) > k:
            total -= window.popleft()
        yield total / len(window)
```
### Concepts
sliding window, deque, generator, running sum

## Example 2
### Snippet
```{language}
{snippet}
```
### Concepts
"""

INSTRUCTION_TEMPLATE = """Create a set of independent code instructions that are original, different, diverse, \
and high-quality, where the properties control an instruction's category, language, concepts, and difficulty.

## Example 1
### Property
category: function implementation
language: Python
concepts: sliding window, deque, running sum
difficulty: medium
### Instruction
Write a Python function `moving_average(values, k)` that returns a list with the average of every window of \
the last k values seen so far (shorter windows at the start), using O(1) work per value.

## Example 2
### Property
category: function implementation
language: {language}
concepts: {concepts}
difficulty: {difficulty}
### Instruction
"""
_STOPS = ("\n## Example", "\n### ", "\n\n\n")
_ENTRY = re.compile(r"`([A-Za-z_]\w*)\s*\(")


@dataclass
class SeedConfig:
    """Where the snippets come from, and how the model turns them into tasks."""

    source: str = field(default="", metadata={"help": "Snippets: a local .jsonl/.parquet or a Hub dataset id"})
    snippet_column: str = field(default="content", metadata={"help": "Column holding the code snippet"})
    split: str = field(default="train", metadata={"help": "Split of a Hub dataset"})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N snippets"})
    max_snippet_chars: int = field(default=2000, metadata={"help": "Truncate longer snippets"})
    language: str = field(default="Python", metadata={"help": "Language of the generated tasks"})
    difficulty: str = field(default="medium", metadata={"help": "Difficulty property of the generated tasks"})
    sampling: SampleConfig = field(
        default_factory=lambda: SampleConfig(n=1, temperature=0.7, max_new_tokens=160),
        metadata={
            "help": "The model writing concepts and tasks and how it samples (every option of codepref sample; "
            "n must be 1: one completion per prompt; default temperature 0.7, 160 new tokens)"
        },
    )

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigError("seed needs a snippet source (a .jsonl/.parquet file or a Hub dataset id)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be >= 1")
        if self.sampling.n != 1:
            raise ConfigError(
                f"sampling.n must be 1 (one concept list and one task per snippet), got {self.sampling.n}"
            )


def _first_block(text: str) -> str:
    for stop in _STOPS:
        text = text.split(stop, 1)[0]
    return text.strip().strip("`").strip()


def _load_snippets(cfg: SeedConfig) -> list[str]:
    path = Path(cfg.source)
    if path.is_file():
        raw = read_dataset(path)
    else:
        raw = load_dataset(cfg.source, split=cfg.split)
    if cfg.snippet_column not in raw.column_names:
        raise DataError(
            f"no column {cfg.snippet_column!r} (columns: {raw.column_names})",
            field="snippet_column",
            source=cfg.source,
        )
    snippets = raw[cfg.snippet_column][: cfg.limit] if cfg.limit else raw[cfg.snippet_column]
    for i, s in enumerate(snippets):
        if not isinstance(s, str) or not s.strip():
            raise DataError("empty or not a string", field=cfg.snippet_column, row=i, source=cfg.source)
    return [s[: cfg.max_snippet_chars] for s in snippets]


def seed_problems(cfg: SeedConfig, *, backend=None) -> Dataset:
    """Problems (``task_id, prompt, instruction, entry_point``, no ground-truth tests) written from snippets."""
    snippets = _load_snippets(cfg)
    own = backend is None
    backend = backend if backend is not None else load_backend(cfg.sampling)
    try:
        chat = cfg.sampling.chat_mode if cfg.sampling.chat_mode is not None else backend.has_chat_template()
        params = GenerationParams(
            temperature=cfg.sampling.temperature,
            top_p=cfg.sampling.top_p,
            max_new_tokens=cfg.sampling.max_new_tokens,
            stop=_STOPS,
        )

        def ask(texts: list[str], stage: str) -> list[str]:
            prompts = [[{"role": "user", "content": t}] if chat else t for t in texts]
            seeds = [derive_seed(cfg.sampling.seed, stage, i) for i in range(len(texts))]
            return [_first_block(out[0]) for out in backend.generate(prompts, 1, params, seeds)]

        concepts = ask(
            [CONCEPT_TEMPLATE.format(language=cfg.language.lower(), snippet=s) for s in snippets], "concepts"
        )
        tasks = ask(
            [
                INSTRUCTION_TEMPLATE.format(
                    language=cfg.language, concepts=c or "functions", difficulty=cfg.difficulty
                )
                for c in concepts
            ],
            "instruction",
        )
    finally:
        if own:
            backend.close()
    rows = []
    for i, (snippet, concept, task) in enumerate(zip(snippets, concepts, tasks, strict=True)):
        m = _ENTRY.search(task)
        rows.append(
            {
                "task_id": f"seed/{i}",
                "prompt": f'"""\n{task}\n"""\n',
                "instruction": task,
                "entry_point": m.group(1) if m else None,
                "tests": [],
                "test_setup": "",
                "io_tests": None,
                "canonical_solution": None,
                "snippet": snippet,
                "concepts": concept,
            }
        )
    ds = Dataset.from_list(rows)
    return with_provenance(ds, "seed", {**config_to_dict(cfg), "chat": chat})
