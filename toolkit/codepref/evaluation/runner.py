"""``codepref eval``: evaluate a model on a task with the pipeline's own stages.

Load the task's problems → sample n per problem (plus one greedy sample if asked) → execute
against the hidden tests in the sandbox → time passing samples (optional) → metrics. The
per-sample results are saved as a dataset next to ``metrics.json`` (model, task, settings,
codepref version), so runs can be compared later without re-running anything.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from .. import __version__
from ..config import config_to_dict
from ..errors import ConfigError
from .report import run_metrics
from .tasks import get_task

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """What to evaluate, how to sample, and where to write the run."""

    model: str = field(default="smollm2-135m-instruct", metadata={"help": "Model: embedded name, path or Hub id"})
    task: str = field(
        default="humaneval",
        metadata={
            "help": "humaneval | humaneval-plus | mbpp | mbpp-sanitized | mbpp-plus | codecontests | problems:PATH"
        },
    )
    task_path: str | None = field(default=None, metadata={"help": "Local file / Hub-style folder for the task"})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N problems"})
    task_ids: list[int | str] | None = field(default=None, metadata={"help": "Evaluate only these problems"})
    n: int = field(default=10, metadata={"help": "Samples per problem (pass@k needs n >= k)"})
    temperature: float = field(default=0.6, metadata={"help": "Sampling temperature"})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling"})
    max_new_tokens: int = field(default=512, metadata={"help": "Tokens per sample"})
    seed: int = field(default=0, metadata={"help": "Sampling seed"})
    backend: str = field(default="transformers", metadata={"help": "transformers | vllm | openai"})
    chat: str = field(default="auto", metadata={"help": "auto | true | false"})
    batch_size: int = field(default=32, metadata={"help": "Sequences decoded together (transformers)"})
    api_base: str | None = field(default=None, metadata={"help": "OpenAI-compatible server URL (backend openai)"})
    greedy: bool = field(default=False, metadata={"help": "Also take one greedy sample per problem (greedy pass@1)"})
    ks: list[int] = field(default_factory=lambda: [1, 10, 100], metadata={"help": "k values of pass@k and best@k"})
    timeout: float = field(default=5.0, metadata={"help": "Seconds per test in the sandbox"})
    timing: str | None = field(
        default=None,
        metadata={
            "help": "Time passing samples with this timing mode (count, code-optimise or interleaved); "
            "default: no timing"
        },
    )
    n_submit: int = field(default=10, metadata={"help": "n of n@k (CodeContests-style public-test filtering)"})
    output: str | None = field(default=None, metadata={"help": "Run folder (default eval-runs/<model>-<task>)"})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"ks must be positive integers, got {self.ks}")
        get_task(self.task)  # unknown tasks fail before any work

    @property
    def run_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        return Path("eval-runs") / f"{Path(self.model).name}-{self.task.replace(':', '_').replace('/', '_')}"


def _sample_config(cfg: EvalConfig, n: int, temperature: float):
    from ..sampling import SampleConfig

    extra = {"api_base": cfg.api_base} if cfg.api_base else {}
    return SampleConfig(
        model=cfg.model,
        backend=cfg.backend,
        n=n,
        temperature=temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
        chat=cfg.chat,
        batch_size=cfg.batch_size,
        **extra,
    )


def evaluate(cfg: EvalConfig, *, backend: Any = None, pool: Any = None) -> tuple[Dataset, dict[str, Any]]:
    """Run one evaluation and write ``results/`` and ``metrics.json`` under ``cfg.run_dir``."""
    from ..execution import ExecuteConfig, execute
    from ..problems import ProblemsConfig
    from ..sampling import sample
    from ..sampling.backends import load_backend

    task = get_task(cfg.task)
    problems = task.load(cfg.task_path)
    if cfg.task_ids or cfg.limit:
        from ..problems import select_problems

        problems = select_problems(problems, ProblemsConfig(source=cfg.task, task_ids=cfg.task_ids, limit=cfg.limit))
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    own_backend = backend is None
    backend = backend if backend is not None else load_backend(_sample_config(cfg, cfg.n, cfg.temperature))
    try:
        ds = sample(
            problems, _sample_config(cfg, cfg.n, cfg.temperature), backend=backend, work_dir=run_dir / "sample.partial"
        )
        greedy = sample(problems, _sample_config(cfg, 1, 0.0), backend=backend) if cfg.greedy else None
    finally:
        if own_backend:
            backend.close()
    exe = ExecuteConfig(timeout=cfg.timeout, tests="ground_truth")
    ds = execute(ds, exe, pool=pool, work_dir=run_dir / "execute.partial")
    if greedy is not None:
        gpassed = execute(greedy, exe, pool=pool)["passed"]
        ds = ds.add_column("greedy_passed", [bool(p[0]) for p in gpassed])
    if task.public_tests:
        public = ds.remove_columns(["exec_matrix", "passed", "exec_stderr"])
        public = public.map(lambda r: {"io_tests": r[task.public_tests]})
        ds = ds.add_column("public_passed", execute(public, exe, pool=pool)["passed"])
    if cfg.timing:
        try:
            from ..timing import TimingConfig, time_samples
        except ImportError as e:  # pragma: no cover - the timing stage is part of codepref
            raise ConfigError(f"timing is unavailable: {e}") from None
        ds = time_samples(ds, TimingConfig(mode=cfg.timing), work_dir=run_dir / "time.partial")
    metrics = run_metrics(ds, cfg.ks, name=cfg.model)
    if "public_passed" in ds.column_names:
        from .metrics import solved_n_at_k

        metrics[f"solved_{cfg.n_submit}@{cfg.n}"] = int(
            sum(solved_n_at_k(h, p, n=cfg.n_submit) for h, p in zip(ds["passed"], ds["public_passed"], strict=True))
        )
    record = {
        "model": cfg.model,
        "task": cfg.task,
        "settings": config_to_dict(cfg),
        "codepref_version": __version__,
        "metrics": metrics,
    }
    ds.save_to_disk(str(run_dir / "results"))
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2))
    logger.info("eval %s on %s: %s", cfg.model, cfg.task, metrics.get("pass@k"))
    return ds, record


def load_run(path: str | Path) -> tuple[str, Dataset]:
    """A saved run: (its model name, its per-sample results)."""
    from datasets import load_from_disk

    p = Path(path)
    results = p / "results"
    if not results.is_dir():
        raise ConfigError(f"{str(p)!r} is not an eval run folder (no results/ inside); run codepref eval first")
    meta = json.loads((p / "metrics.json").read_text()) if (p / "metrics.json").exists() else {}
    return meta.get("model", p.name), load_from_disk(str(results))
