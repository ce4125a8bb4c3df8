"""Execution rewards for online RL (GRPO): the fraction of a problem's hidden tests a completion passes.

IotaCode found online RL with an execution signal the strongest path; here the signal comes from
codepref's sandboxed executor (:mod:`codepref.execution`, a pool of isolated worker processes), so
generated code never runs in the trainer's process. TRL calls a reward function with the batch's
``prompts`` and ``completions`` plus every other dataset column as a keyword argument — the GRPO
dataset therefore carries ``tests``, ``test_setup``, ``entry_point`` and the original code
``source_prompt`` of each problem (see ``recipes/grpo.py``).
"""

from __future__ import annotations

import atexit
import logging
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

from ..execution.config import ExecutionConfig

logger = logging.getLogger(__name__)


class AssertPool(Protocol):
    """What the reward needs from an executor: ``codepref.execution.WorkerPool.map_asserts``."""

    def map_asserts(self, jobs: Sequence[tuple[str, Sequence[str], str]]) -> Sequence[Any]: ...


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of a conversational completion's messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


class ExecutionReward:
    """GRPO reward function: fraction of the hidden tests passed (outcome code 0), in [0, 1].

    ``pool`` is any :class:`AssertPool`; by default a ``codepref.execution.WorkerPool`` with the sandbox
    limits of ``execution`` (an ``ExecutionConfig``: timeout, memory, CPU, processes, isolation; default
    a 5 s timeout per test) is started on first use and closed at exit. ``chat`` says how to extract
    the program from a completion (``codepref.sampling.extract_code``). ``syntax_penalty`` is
    subtracted when no program can be extracted at all (a shaping option; 0 by default).
    """

    __name__ = "execution_reward"  # TRL logs rewards under the function's name

    def __init__(
        self,
        pool: AssertPool | None = None,
        *,
        execution: ExecutionConfig | None = None,
        chat: bool = True,
        syntax_penalty: float = 0.0,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None:  # the argument before the reward took a whole ExecutionConfig
            if execution is not None:
                raise TypeError("pass either execution= or the deprecated timeout=, not both")
            warnings.warn(
                "ExecutionReward(timeout=...) is deprecated: use execution=ExecutionConfig(timeout=...)",
                FutureWarning,
                stacklevel=2,
            )
            execution = ExecutionConfig(timeout=timeout)
        self._pool = pool
        self._owned = None
        self.execution = execution if execution is not None else ExecutionConfig(timeout=5.0)
        self.chat = chat
        self.syntax_penalty = syntax_penalty
        self.calls = 0

    @property
    def pool(self) -> AssertPool:
        if self._pool is None:
            from ..execution import WorkerPool

            self._owned = WorkerPool(self.execution)
            self._pool = self._owned.__enter__()
            atexit.register(self.close)
        return self._pool

    def close(self) -> None:
        if self._owned is not None:
            owned, self._owned, self._pool = self._owned, None, None
            owned.__exit__(None, None, None)

    def program(self, completion: Any, source_prompt: str = "", entry_point: str | None = None) -> str:
        from ..sampling import extract_code

        return extract_code(
            completion_text(completion), prompt=source_prompt or "", entry_point=entry_point, chat=self.chat
        )

    def __call__(
        self,
        prompts: list,
        completions: list,
        tests: list[list[str]],
        test_setup: list[str] | None = None,
        entry_point: list[str | None] | None = None,
        source_prompt: list[str] | None = None,
        **_: Any,
    ) -> list[float]:
        n = len(completions)
        test_setup = test_setup or [""] * n
        entry_point = entry_point or [None] * n
        source_prompt = source_prompt or [""] * n
        programs = [self.program(c, s, e) for c, s, e in zip(completions, source_prompt, entry_point, strict=True)]
        jobs = [(p, list(t), s or "") for p, t, s in zip(programs, tests, test_setup, strict=True)]
        results = self.pool.map_asserts(jobs)
        self.calls += 1
        rewards = []
        for program, result in zip(programs, results, strict=True):
            codes = list(result.codes)
            score = sum(c == 0 for c in codes) / len(codes) if codes else 0.0
            rewards.append(score - (self.syntax_penalty if not program.strip() else 0.0))
        return rewards
