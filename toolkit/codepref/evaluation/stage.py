"""``codepref eval``: evaluate a model on a task with the pipeline's own stages.

Load the task's problems → sample n per problem (plus one greedy sample if asked) → execute
against the hidden tests in the sandbox → time passing samples (optional) → metrics. The
per-sample results are saved as a dataset next to ``metrics.json`` (model, task, settings,
codepref version), so runs can be compared later without re-running anything.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from .. import __version__
from ..config import config_to_dict
from ..errors import ConfigError
from ..execution.config import ExecutionConfig
from ..sampling.config import SampleConfig
from ..timing.config import TimingConfig
from .report import run_metrics
from .tasks import get_task

logger = logging.getLogger(__name__)


def _eval_sampling() -> SampleConfig:
    return SampleConfig(n=10, max_new_tokens=512)


def _eval_execution() -> ExecutionConfig:
    return ExecutionConfig(timeout=5.0)


@dataclass
class EvalConfig:
    """What to evaluate and where to write the run.

    How the model is sampled, how samples run and how they are timed are the configs of those
    stages themselves (``sampling``: the model is ``sampling.model``; ``execution``: sandbox limits;
    ``timing``: None = no timing), so every option of ``codepref sample`` / ``time`` is available here
    under the same name: ``--sampling.n 20``, ``--execution.timeout 10``, ``--timing.mode count``.
    """

    task: str = field(
        default="humaneval",
        metadata={
            "help": "humaneval | humaneval-plus | mbpp | mbpp-sanitized | mbpp-plus | codecontests | problems:PATH"
        },
    )
    task_path: str | None = field(default=None, metadata={"help": "Local file / Hub-style folder for the task"})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N problems"})
    task_ids: list[int | str] | None = field(default=None, metadata={"help": "Evaluate only these problems"})
    sampling: SampleConfig = field(
        default_factory=_eval_sampling,
        metadata={"help": "How to sample (every option of codepref sample; default n=10, max_new_tokens=512)"},
    )
    execution: ExecutionConfig = field(
        default_factory=_eval_execution,
        metadata={"help": "Sandbox limits for the hidden tests (default timeout 5 s per test)"},
    )
    timing: TimingConfig | None = field(
        default=None, metadata={"help": "Time passing samples with these settings (default: no timing)"}
    )
    greedy: bool = field(default=False, metadata={"help": "Also take one greedy sample per problem (greedy pass@1)"})
    ks: list[int] = field(default_factory=lambda: [1, 10, 100], metadata={"help": "k values of pass@k and best@k"})
    n_submit: int = field(default=10, metadata={"help": "n of n@k (CodeContests-style public-test filtering)"})
    output: str | None = field(default=None, metadata={"help": "Run folder (default eval-runs/<model>-<task>)"})

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"ks must be positive integers, got {self.ks}")
        get_task(self.task)  # unknown tasks fail before any work

    @property
    def model(self) -> str:
        """The evaluated model (``sampling.model``)."""
        return self.sampling.model

    @property
    def run_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        return Path("eval-runs") / f"{Path(self.model).name}-{self.task.replace(':', '_').replace('/', '_')}"


# The flat options EvalConfig had before it held its stages' configs (issue 17), and where they live now.
_FLAT_OPTIONS = {
    **{name: "sampling" for name in ("model", "n", "temperature", "top_p", "max_new_tokens", "seed", "backend")},
    **{name: "sampling" for name in ("chat", "batch_size", "api_base")},
    "timeout": "execution",
}
_dataclass_init = EvalConfig.__init__


@functools.wraps(_dataclass_init)
def _init_accepting_flat_options(self: EvalConfig, *args: Any, **kwargs: Any) -> None:
    """``EvalConfig(model=..., n=..., timeout=..., timing="count")`` (the flat options of before) still work,
    with a FutureWarning: they are moved into ``sampling`` / ``execution`` / ``timing``."""
    flat = {k: kwargs.pop(k) for k in list(kwargs) if k in _FLAT_OPTIONS}
    timing = kwargs.get("timing")
    if isinstance(timing, str):
        flat["timing"] = kwargs.pop("timing")
    _dataclass_init(self, *args, **kwargs)
    if not flat:
        return
    warnings.warn(
        f"EvalConfig({', '.join(f'{k}=' for k in flat)}) is deprecated: use sampling=SampleConfig(...), "
        "execution=ExecutionConfig(...), timing=TimingConfig(mode=...)",
        FutureWarning,
        stacklevel=2,
    )
    for part in ("sampling", "execution"):
        moved = {k: v for k, v in flat.items() if _FLAT_OPTIONS.get(k) == part}
        if moved:
            setattr(self, part, dataclasses.replace(getattr(self, part), **moved))
    if "timing" in flat:
        self.timing = TimingConfig(mode=flat["timing"])


EvalConfig.__init__ = _init_accepting_flat_options  # type: ignore[method-assign]


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
    backend = backend if backend is not None else load_backend(cfg.sampling)
    try:
        ds = sample(problems, cfg.sampling, backend=backend, work_dir=run_dir / "sample.partial")
        greedy_cfg = dataclasses.replace(cfg.sampling, n=1, temperature=0.0)
        greedy = sample(problems, greedy_cfg, backend=backend) if cfg.greedy else None
    finally:
        if own_backend:
            backend.close()
    exe = ExecuteConfig(**dataclasses.asdict(cfg.execution), tests="ground_truth")
    ds = execute(ds, exe, pool=pool, work_dir=run_dir / "execute.partial")
    if greedy is not None:
        gpassed = execute(greedy, exe, pool=pool)["passed"]
        ds = ds.add_column("greedy_passed", [bool(p[0]) for p in gpassed])
    if task.public_tests:
        public = ds.remove_columns(["exec_matrix", "passed", "exec_stderr"])
        public = public.map(lambda r: {"io_tests": r[task.public_tests]})
        ds = ds.add_column("public_passed", execute(public, exe, pool=pool)["passed"])
    if cfg.timing is not None:
        from ..timing import time_samples

        ds = time_samples(ds, cfg.timing, work_dir=run_dir / "time.partial")
    metrics = run_metrics(ds, cfg.ks, name=cfg.model)
    if "public_passed" in ds.column_names:
        from .metrics import solved_n_at_k

        metrics[f"solved_{cfg.n_submit}@{cfg.sampling.n}"] = int(
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
