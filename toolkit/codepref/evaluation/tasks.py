"""Benchmark tasks: a small contract and a registry (bigcode-evaluation-harness style).

A task says where its problems come from and how they are checked; sampling, execution and
timing are the pipeline's own. Adding a benchmark is one short :class:`Task` and a
:func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset

from ..errors import ConfigError
from ..problems import ProblemsConfig, load_problems


@dataclass(frozen=True)
class Task:
    """One benchmark: its problems, and the columns its checks use."""

    name: str
    description: str
    load: Callable[[str | None], Dataset]  # path override (local file / Hub-style folder) → problems
    offline: bool = False  # loads with no network
    public_tests: str | None = None  # column of public tests for n@k filtering (CodeContests)
    citation: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ConfigError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """A registered task, or ``problems:PATH`` for any problem dataset saved by ``codepref problems``."""
    if name.startswith("problems:"):
        path = name.split(":", 1)[1]

        def load(_: str | None) -> Dataset:
            from ..dataset_io import read_dataset

            return read_dataset(path)

        return Task(name=name, description=f"problems from {path}", load=load, offline=True)
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; registered: {', '.join(sorted(TASKS))} (or problems:PATH)")
    return TASKS[name]


def _named(source: str, split: str | None = None, **kw) -> Callable[[str | None], Dataset]:
    def load(path: str | None) -> Dataset:
        return load_problems(ProblemsConfig(source=source, split=split, path=path, **kw))

    return load


register(
    Task(
        "humaneval",
        "HumanEval, 164 hand-written Python problems (Chen et al., 2021)",
        _named("humaneval"),
        offline=True,
        tags=("python",),
    )
)
register(
    Task(
        "mbpp",
        "MBPP full, test split (500 problems), standard 3-shot prompt (Austin et al., 2021)",
        _named("mbpp", "test"),
        tags=("python",),
    )
)
register(
    Task(
        "mbpp-sanitized",
        "MBPP sanitized, test split (257 problems)",
        _named("mbpp-sanitized", "test"),
        tags=("python",),
    )
)
register(
    Task(
        "humaneval-plus",
        "HumanEval+ (EvalPlus): HumanEval with ~80x more tests (Liu et al., 2023)",
        _named("humaneval-plus"),
        tags=("python", "evalplus"),
    )
)
register(
    Task(
        "mbpp-plus",
        "MBPP+ (EvalPlus): sanitized MBPP with ~35x more tests (Liu et al., 2023)",
        _named("mbpp-plus"),
        tags=("python", "evalplus"),
    )
)
register(
    Task(
        "codecontests",
        "CodeContests test split: stdin/stdout contest problems (Li et al., 2022)",
        _named("codecontests", "test"),
        public_tests="public_io_tests",
        tags=("python", "stdio"),
    )
)
