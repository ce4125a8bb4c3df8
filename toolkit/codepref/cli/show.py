"""``codepref show``: a rich summary of any pipeline dataset, whatever stages it went through."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from datasets import Dataset
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

OUTCOME_NAMES = {0: "pass", 1: "fail", 2: "error", 3: "timeout", 4: "syntax", 5: "killed"}


def _compiles(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _problem_table(ds: Dataset, limit: int) -> Table:
    cols = set(ds.column_names)
    table = Table(title=f"{len(ds)} problems", show_lines=False)
    table.add_column("task_id", style="bold")
    table.add_column("tests", justify="right")
    if "samples" in cols:
        table.add_column("samples", justify="right")
        table.add_column("compile", justify="right")
        table.add_column("mean chars", justify="right")
    if "passed" in cols:
        table.add_column("passed", justify="right")
    if "gen_tests" in cols:
        table.add_column("gen tests", justify="right")
    for row in ds.select(range(min(limit, len(ds)))):
        cells = [row["task_id"], str(len(row["tests"]) or len((row.get("io_tests") or {}).get("input", [])))]
        if "samples" in cols:
            samples: Sequence[str] = row["samples"]
            ok = sum(_compiles(s) for s in samples)
            mean = sum(map(len, samples)) / len(samples) if samples else 0
            cells += [str(len(samples)), f"{ok}/{len(samples)}", f"{mean:.0f}"]
        if "passed" in cols:
            cells.append(f"{sum(row['passed'])}/{len(row['passed'])}")
        if "gen_tests" in cols:
            cells.append(str(len(row["gen_tests"])))
        table.add_row(*cells)
    return table


def _totals(ds: Dataset) -> Table:
    cols = set(ds.column_names)
    t = Table(title="totals", show_header=False)
    t.add_row("columns", ", ".join(ds.column_names))
    t.add_row("problems", str(len(ds)))
    if "samples" in cols:
        samples = [s for row in ds["samples"] for s in row]
        t.add_row("samples", str(len(samples)))
        t.add_row("compile rate", f"{sum(map(_compiles, samples)) / max(1, len(samples)):.1%}")
        t.add_row("empty samples", str(sum(1 for s in samples if not s.strip())))
    from ..stats import dataset_stats

    stats = dataset_stats(ds)  # the numbers `codepref stats` and the dataset card show
    if "solutions_passing" in stats:
        n, ok = stats["solutions_total"], stats["solutions_passing"]
        t.add_row("passing samples", f"{ok}/{n} ({stats['pass_rate']:.1%})")
        t.add_row("problems solved", f"{stats['problems_solved']}/{len(ds)}")
    if "tests_judged" in stats:
        t.add_row(
            "test trust",
            f"{stats['tests_judged']} judged outside the sample's process, {stats['tests_in_process']} in-process",
        )
    return t


def render(ds: Dataset, *, console: Console, limit: int = 20, example: bool = True) -> None:
    """Print the totals, a per-problem table and one example sample."""
    console.print(_totals(ds))
    console.print(_problem_table(ds, limit))
    if example and "samples" in ds.column_names and len(ds):
        row = ds[0]
        for i, s in enumerate(row["samples"]):
            if s.strip():
                console.print(
                    Panel(Group(Syntax(s, "python", line_numbers=False)), title=f"{row['task_id']} — sample {i}")
                )
                break


def render_stats(ds: Dataset, *, console: Console, min_passing: int = 2, min_failing: int = 1) -> None:
    """Code-Optimise Table-1-style numbers and pair counts per kind."""
    from ..stats import dataset_stats

    s = dataset_stats(ds, min_passing=min_passing, min_failing=min_failing)
    t = Table(title="statistics (Code-Optimise Table 1 style)", show_header=False)
    labels = {
        "problems_total": "problems total",
        "problems_kept": "problems kept",
        "problems_ratio": "problems ratio",
        "solutions_total": "solutions total",
        "solutions_kept": "solutions kept",
        "solutions_ratio": "solutions ratio",
        "solutions_passing": "passing solutions",
        "pass_rate": "pass rate",
        "problems_solved": "problems solved",
        "runtime_cov_mean": "runtime CoV (mean)",
        "runtime_cov_max": "runtime CoV (max)",
        "runtimes_measured": "runtimes measured",
        "pairs_total": "pairs total",
    }
    for key, label in labels.items():
        if key in s and s[key] is not None:
            v = s[key]
            t.add_row(
                label,
                f"{v:.1%}" if key.endswith(("ratio", "rate")) else f"{v:.4f}" if isinstance(v, float) else str(v),
            )
    for kind, count in s.get("pairs_per_kind", {}).items():
        t.add_row(f"pairs: {kind}", str(count))
    if "kind" in ds.column_names or "label" in ds.column_names:
        t.add_row("rows", str(len(ds)))
    console.print(t)
