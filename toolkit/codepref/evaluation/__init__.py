"""Evaluation (bigcode-harness style): metrics, run comparison and reports (SPEC §4.9)."""

from .code_eval import EVALUATE_METRIC, compute_code_eval
from .metrics import (
    best_at_k,
    common_problems,
    compile_rate,
    mean_pass_at_k,
    median_of_passing,
    pass_at_k,
    solved_n_at_k,
    speedup,
)
from .report import compare_runs, markdown_report, run_metrics, write_plots, write_report
from .stage import EvalConfig, evaluate, load_run
from .tasks import TASKS, Task, get_task, register

__all__ = [
    "EVALUATE_METRIC",
    "TASKS",
    "EvalConfig",
    "Task",
    "evaluate",
    "get_task",
    "load_run",
    "register",
    "best_at_k",
    "common_problems",
    "compare_runs",
    "compile_rate",
    "compute_code_eval",
    "markdown_report",
    "mean_pass_at_k",
    "median_of_passing",
    "pass_at_k",
    "run_metrics",
    "solved_n_at_k",
    "speedup",
    "write_plots",
    "write_report",
]
