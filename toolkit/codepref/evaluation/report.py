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
from .intervals import paired_difference, paired_permutation_test, paired_ratio
from .metrics import (
    best_at_k,
    common_problems,
    compile_rate,
    mean_pass_at_k,
    median_of_passing,
    pass_at_k,
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


def compare_runs(
    runs: Mapping[str, Dataset],
    base: str,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Every model against ``base``: pass@k on the problems both ran, runtime and length on the problems all
    runs solve at least once (Code-Optimise §5), each difference and ratio with a paired bootstrap interval
    over problems (``resamples``, ``seed``, ``confidence``) and a paired permutation test of pass@1
    (:mod:`codepref.evaluation.intervals`)."""
    if base not in runs:
        raise DataError(f"base run {base!r} is not among the runs {list(runs)}", field="base")
    cols = {name: _columns(ds, name) for name, ds in runs.items()}
    passed = {n: dict(zip(c["task_id"], c["passed"], strict=True)) for n, c in cols.items()}
    common = common_problems(passed)
    boot = {"resamples": resamples, "seed": seed, "confidence": confidence}
    result: dict[str, Any] = {
        "base": base,
        "common_problems": len(common),
        "models": {},
        "intervals": {**boot, "method": "paired percentile bootstrap over problems; sign-flip permutation test"},
    }
    for name, c in cols.items():
        tids = c["task_id"]
        m: dict[str, Any] = {"metrics": run_metrics(runs[name], ks, name)}
        m["median_length_common"] = median_of_passing(_lengths(c), passed[name], common)
        m["_lengths"] = _lengths(c)
        if "runtime_ns" in c:
            rts = dict(zip(tids, c["runtime_ns"], strict=True))
            m["_runtimes"] = rts
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
    for name, m in result["models"].items():
        m["vs_base"] = _versus_base(passed[name], passed[base], ks, boot)
        m["pass@k_intervals"] = _own_intervals(passed[name], ks, boot)
        m["ratio_intervals"] = _ratio_intervals(m, b, passed[name], passed[base], common, boot)
    for m in result["models"].values():
        for key in ("per_problem_runtime", "_lengths", "_runtimes"):
            m.pop(key, None)
    return result


def _versus_base(model: Mapping[str, list], base: Mapping[str, list], ks: Sequence[int], boot: dict) -> dict:
    """Δ pass@k (model − base) on the problems both ran, with intervals; the pass@1 permutation test."""
    shared = [t for t in model if t in base]
    out: dict[str, Any] = {"problems": len(shared), "pass@k": {}}
    for k in ks:
        if not shared or min(min(len(model[t]), len(base[t])) for t in shared) < k:
            continue
        a = [pass_at_k(len(model[t]), int(sum(model[t])), k) for t in shared]
        b = [pass_at_k(len(base[t]), int(sum(base[t])), k) for t in shared]
        entry = paired_difference(a, b, **boot).as_dict()
        if k == 1:
            entry["p_value"] = paired_permutation_test(
                np.subtract(a, b), resamples=boot["resamples"], seed=boot["seed"]
            )
        out["pass@k"][str(k)] = entry
    return out


def _own_intervals(passed: Mapping[str, list], ks: Sequence[int], boot: dict) -> dict:
    """Each pass@k of one run with its bootstrap interval over problems."""
    out = {}
    for k in ks:
        if passed and min(len(p) for p in passed.values()) >= k:
            values = [pass_at_k(len(p), int(sum(p)), k) for p in passed.values()]
            out[str(k)] = paired_difference(values, [0.0] * len(values), **boot).as_dict()
    return out


def _ratio_intervals(m: dict, b: dict, passed_m: Mapping, passed_b: Mapping, common: list[str], boot: dict) -> dict:
    """Bootstrap intervals (over the commonly solved problems) of the length and runtime ratios to base."""

    def ratio(values_m: Mapping, values_b: Mapping) -> Any:
        def statistic(idx: np.ndarray) -> float | None:
            chosen = [common[i] for i in idx]
            num = median_of_passing(values_m, passed_m, chosen)
            den = median_of_passing(values_b, passed_b, chosen)
            return None if num is None or not den else num / den

        return paired_ratio(statistic, len(common), **boot).as_dict()

    out: dict[str, Any] = {}
    if common:
        out["length"] = ratio(m["_lengths"], b["_lengths"])
        if "_runtimes" in m and "_runtimes" in b:
            out["runtime"] = ratio(m["_runtimes"], b["_runtimes"])
    return out


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
    lines += _versus_base_table(cmp)
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def _ci(entry: Mapping[str, Any] | None, pct: bool = False) -> str:
    if not entry or entry.get("estimate") is None:
        return "–"
    fmt = (lambda v: f"{100 * v:+.1f} pp") if pct else (lambda v: f"{v:.3f}")
    return f"{fmt(entry['estimate'])} [{fmt(entry['low'])}, {fmt(entry['high'])}]"


def _versus_base_table(cmp: Mapping[str, Any]) -> list[str]:
    """Each model minus the base, with the intervals (pass@k in percentage points, ratios as ratios)."""
    models = {n: m for n, m in cmp["models"].items() if n != cmp["base"]}
    if not models:
        return []
    ks = sorted({k for m in models.values() for k in m["vs_base"]["pass@k"]}, key=int)
    info = cmp.get("intervals", {})
    lines = [
        "",
        f"Against **{cmp['base']}**: differences and ratios with {info.get('confidence', 0.95):.0%} paired bootstrap "
        f"intervals over problems ({info.get('resamples')} resamples, seed {info.get('seed')}); p: sign-flip "
        "permutation test of pass@1.",
        "",
        "| model | " + " | ".join(f"Δ pass@{k}" for k in ks) + " | p (pass@1) | length ratio | runtime ratio |",
        "|---" * (len(ks) + 4) + "|",
    ]
    for name, m in models.items():
        pk, ri = m["vs_base"]["pass@k"], m.get("ratio_intervals", {})
        p = pk.get("1", {}).get("p_value")
        lines.append(
            f"| {name} | "
            + " | ".join(_ci(pk.get(k), pct=True) for k in ks)
            + f" | {_fmt(p)} | {_ci(ri.get('length'))} | {_ci(ri.get('runtime'))} |"
        )
    return lines


def _bars(ax: Any, names: list[str], labels: list[str], series: dict[str, list[tuple]], *, scale: float = 1.0) -> None:
    """Grouped bars: one group per label, one bar per model; ``(value, low, high)`` draws an error bar."""
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        vals = [scale * (v[0] if v[0] is not None else 0.0) for v in series[name]]
        err = np.array(
            [
                [scale * (v[0] - v[1]), scale * (v[2] - v[0])]
                if len(v) == 3 and None not in v and not np.isnan(v[1:]).any()
                else [0.0, 0.0]
                for v in series[name]
            ]
        ).T
        ax.bar(np.arange(len(labels)) + i * width, vals, width, label=name, yerr=err, capsize=3)
    ax.set_xticks(np.arange(len(labels)) + width * (len(names) - 1) / 2, labels)
    ax.legend()


def write_plots(cmp: Mapping[str, Any], out_dir: str | Path) -> list[str]:
    """The papers' figures as PNGs, with the comparison's intervals as error bars: pass@k per model, and the
    ratios to base (runtime, length, best@k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = cmp["models"]
    names = list(models)
    ks = sorted({k for m in models.values() for k in m["metrics"]["pass@k"]}, key=int)
    paths = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        paths.append(str(out / name))
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    series = {}
    for name, m in models.items():
        own = m.get("pass@k_intervals", {})
        series[name] = [
            (m["metrics"]["pass@k"].get(k), own[k]["low"], own[k]["high"])
            if k in own
            else (m["metrics"]["pass@k"].get(k),)
            for k in ks
        ]
    _bars(ax, names, [f"pass@{k}" for k in ks], series, scale=100.0)
    ax.set_ylabel(f"% ({cmp.get('intervals', {}).get('confidence', 0.95):.0%} bootstrap interval)")
    ax.set_title("pass@k")
    save(fig, "pass_at_k.png")

    best = sorted({k for m in models.values() for k in m["ratios_to_base"].get("best@k", {})}, key=int)
    metrics = ["runtime", "length"] + [f"best@{k}" for k in best]
    series = {}
    for name, m in models.items():
        r, ci = m["ratios_to_base"], m.get("ratio_intervals", {})
        row = []
        for metric in metrics:
            value = r.get("best@k", {}).get(metric[5:]) if metric.startswith("best@") else r.get(metric)
            row.append((value, ci[metric]["low"], ci[metric]["high"]) if metric in ci else (value,))
        series[name] = row
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _bars(ax, names, metrics, series)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_ylabel(f"ratio to {cmp['base']} (<1 = faster/shorter)")
    ax.set_title("runtime, length and best@k relative to base")
    save(fig, "ratios_to_base.png")
    return paths


def write_report(cmp: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``comparison.json``, the plots and ``report.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(cmp, indent=2))
    plots = write_plots(cmp, out)
    (out / "report.md").write_text(markdown_report(cmp, plots))
    return out / "report.md"
