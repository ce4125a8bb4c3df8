"""Metrics of one run, comparisons of several runs against a base, plots and a Markdown report.

A *run* is a dataset with one row per problem and, per sample, ``samples``, ``passed`` and
optionally ``runtime_ns`` and ``exec_matrix`` — exactly what the pipeline's sampling,
execution and timing stages produce, so evaluation needs no second engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from ..errors import DataError
from .metrics import (
    best_at_k,
    common_problems,
    compile_rate,
    mean_pass_at_k,
    median_of_passing,
    per_problem_median,
    solution_length,
    speedup,
)

DEFAULT_KS = (1, 10, 100)


def _columns(ds: Dataset, name: str) -> dict[str, Any]:
    missing = [c for c in ("task_id", "samples", "passed") if c not in ds.column_names]
    if missing:
        raise DataError(f"run {name!r} lacks columns {missing} (run sample and execute first)", field=missing[0])
    cols = {
        c: ds[c]
        for c in ("task_id", "samples", "passed", "runtime_ns", "exec_matrix", "greedy_passed", "prompt")
        if c in ds.column_names
    }
    return cols


def _lengths(c: dict[str, list]) -> dict[str, list[int]]:
    """task id → each sample's solution length (the prompt a completion model continued is not counted)."""
    prompts = c.get("prompt") or [None] * len(c["task_id"])
    return {
        t: [solution_length(s, p) for s in ss] for t, ss, p in zip(c["task_id"], c["samples"], prompts, strict=True)
    }


def run_metrics(ds: Dataset, ks: Sequence[int] = DEFAULT_KS, name: str = "run") -> dict[str, Any]:
    """pass@k, compile rate, solved problems, median runtime/length of working solutions of one run."""
    c = _columns(ds, name)
    ns = [len(p) for p in c["passed"]]
    cs = [int(sum(p)) for p in c["passed"]]
    out: dict[str, Any] = {
        "problems": len(ds),
        "samples": int(sum(ns)),
        "solved": int(sum(x > 0 for x in cs)),
        "pass@k": {str(k): mean_pass_at_k(ns, cs, k) for k in ks if ns and min(ns) >= k},
    }
    if "greedy_passed" in c:
        out["greedy_pass@1"] = float(np.mean(c["greedy_passed"]))
    matrices = c.get("exec_matrix") or [None] * len(ds)
    rates = [compile_rate(s, m) for s, m in zip(c["samples"], matrices, strict=True)]
    total = [r * n for r, n in zip(rates, ns, strict=True) if r is not None]
    out["compile_rate"] = float(sum(total) / max(1, sum(ns)))
    tids = c["task_id"]
    passed = dict(zip(tids, c["passed"], strict=True))
    out["median_length"] = median_of_passing(_lengths(c), passed, tids)
    if "runtime_ns" in c:
        out["median_runtime_ns"] = median_of_passing(dict(zip(tids, c["runtime_ns"], strict=True)), passed, tids)
    return out


def compare_runs(runs: Mapping[str, Dataset], base: str, ks: Sequence[int] = DEFAULT_KS) -> dict[str, Any]:
    """Every model against ``base`` on the problems all runs solve at least once (Code-Optimise §5)."""
    if base not in runs:
        raise DataError(f"base run {base!r} is not among the runs {list(runs)}", field="base")
    cols = {name: _columns(ds, name) for name, ds in runs.items()}
    passed = {n: dict(zip(c["task_id"], c["passed"], strict=True)) for n, c in cols.items()}
    common = common_problems(passed)
    result: dict[str, Any] = {"base": base, "common_problems": len(common), "models": {}}
    for name, c in cols.items():
        tids = c["task_id"]
        m: dict[str, Any] = {"metrics": run_metrics(runs[name], ks, name)}
        m["median_length_common"] = median_of_passing(_lengths(c), passed[name], common)
        if "runtime_ns" in c:
            rts = dict(zip(tids, c["runtime_ns"], strict=True))
            m["median_runtime_common"] = median_of_passing(rts, passed[name], common)
            m["per_problem_runtime"] = {t: per_problem_median(rts[t], passed[name][t]) for t in common}
            n_min = min((len(passed[name][t]) for t in common), default=0)
            m["best@k"] = {
                str(k): float(np.median([best_at_k(rts[t], passed[name][t], k) for t in common]))
                for k in ks
                if common and n_min >= k
            }
        result["models"][name] = m
    b = result["models"][base]
    for m in result["models"].values():
        ratios: dict[str, Any] = {}
        if b["median_length_common"] and m["median_length_common"] is not None:
            ratios["length"] = m["median_length_common"] / b["median_length_common"]
        if b.get("median_runtime_common") and m.get("median_runtime_common") is not None:
            ratios["runtime"] = m["median_runtime_common"] / b["median_runtime_common"]
            ratios["best@k"] = {k: v / b["best@k"][k] for k, v in m["best@k"].items() if b["best@k"].get(k)}
            m["speedup"] = speedup(b["per_problem_runtime"], m["per_problem_runtime"])
        m["ratios_to_base"] = ratios
    for m in result["models"].values():
        m.pop("per_problem_runtime", None)
    return result


# ---- outputs ---------------------------------------------------------------------------------------------


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1%}" if pct else f"{v:.4g}"
    return str(v)


def markdown_report(cmp: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """A Markdown report of :func:`compare_runs` (tables + plot links)."""
    models = cmp["models"]
    ks = sorted({k for m in models.values() for k in m["metrics"]["pass@k"]}, key=int)
    lines = [
        f"# Evaluation report\n\nBase: **{cmp['base']}**. Runtime and length are medians over the "
        f"working solutions of the {cmp['common_problems']} problems every model solves at least once.\n",
        "| model | " + " | ".join(f"pass@{k}" for k in ks) + " | compile rate | solved | median length | "
        "length ratio | median runtime (ns) | runtime ratio | speed-up | % optimised |",
        "|---" * (len(ks) + 9) + "|",
    ]
    for name, m in models.items():
        r, s = m["ratios_to_base"], m.get("speedup") or {}
        lines.append(
            f"| {name} | "
            + " | ".join(_fmt(m["metrics"]["pass@k"].get(k), True) for k in ks)
            + f" | {_fmt(m['metrics']['compile_rate'], True)} | {m['metrics']['solved']}/{m['metrics']['problems']}"
            f" | {_fmt(m['median_length_common'])} | {_fmt(r.get('length'))} | {_fmt(m.get('median_runtime_common'))}"
            f" | {_fmt(r.get('runtime'))} | {_fmt(s.get('speedup'))} | {_fmt(s.get('optimised'), True)} |"
        )
    bk = sorted({k for m in models.values() for k in (m.get("best@k") or {})}, key=int)
    if bk:
        lines += [
            "",
            "| model | " + " | ".join(f"best@{k} (ns) | ratio" for k in bk) + " |",
            "|---" * (2 * len(bk) + 1) + "|",
        ]
        for name, m in models.items():
            cells = [f"{_fmt(m['best@k'].get(k))} | {_fmt(m['ratios_to_base'].get('best@k', {}).get(k))}" for k in bk]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def write_plots(cmp: Mapping[str, Any], out_dir: str | Path) -> list[str]:
    """The papers' figures as PNGs: pass@k bars per model, and ratios to base (runtime, length, best@k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = cmp["models"]
    names = list(models)
    ks = sorted({k for m in models.values() for k in m["metrics"]["pass@k"]}, key=int)
    paths = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        vals = [100 * (models[name]["metrics"]["pass@k"].get(k) or 0.0) for k in ks]
        ax.bar(np.arange(len(ks)) + i * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(ks)) + width * (len(names) - 1) / 2, [f"pass@{k}" for k in ks])
    ax.set_ylabel("%")
    ax.legend()
    ax.set_title("pass@k")
    fig.tight_layout()
    paths.append(str(out / "pass_at_k.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    metrics = ["runtime", "length"] + [
        f"best@{k}"
        for k in sorted({k for m in models.values() for k in m["ratios_to_base"].get("best@k", {})}, key=int)
    ]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(names):
        r = models[name]["ratios_to_base"]
        vals = [r.get(m) if not m.startswith("best@") else r.get("best@k", {}).get(m[5:]) for m in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, [v if v is not None else 0 for v in vals], width, label=name)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(metrics)) + width * (len(names) - 1) / 2, metrics)
    ax.set_ylabel(f"ratio to {cmp['base']} (<1 = faster/shorter)")
    ax.legend()
    ax.set_title("runtime, length and best@k relative to base")
    fig.tight_layout()
    paths.append(str(out / "ratios_to_base.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_report(cmp: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``comparison.json``, the plots and ``report.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(cmp, indent=2))
    plots = write_plots(cmp, out)
    (out / "report.md").write_text(markdown_report(cmp, plots))
    return out / "report.md"
