"""The commands that are not dataset stages: inspect (show, stats), run pipelines, publish / pull /
version datasets, evaluate and compare models. Stage subcommands are generated from
:data:`codepref.stages.STAGES` (see :mod:`codepref.cli`); every option here is parsed by the same
:func:`codepref.stages.config_parser`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace
from rich.console import Console

from ..stages import config_from_namespace, config_parser

out = Console()


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, its parser (built when needed) and what it runs."""

    help: str
    parser: Callable[[], ArgumentParser]
    run: Callable[[Namespace], None]


def cmd_show(ns: Namespace) -> None:
    from ..dataset_io import read_dataset
    from .show import render

    render(read_dataset(ns.input), console=out, limit=ns.limit)


def cmd_stats(ns: Namespace) -> None:
    from ..dataset_io import read_dataset
    from .show import render_stats

    render_stats(read_dataset(ns.input), console=out, min_passing=ns.min_passing, min_failing=ns.min_failing)


def cmd_run(ns: Namespace) -> None:
    from ..pipeline import run_pipeline

    outputs = run_pipeline(
        ns.pipeline, start=ns.start, until=ns.until, output_dir=ns.output_dir, overrides=ns.set or []
    )
    out.print(f"[green]pipeline done: {', '.join(f'{k} → {v}' for k, v in outputs.items())}")


def cmd_publish(ns: Namespace) -> None:
    from datasets import load_from_disk

    from ..dataset_io import read_dataset
    from ..hub import PublishConfig, publish_with_config

    path = Path(ns.input)
    data = load_from_disk(str(path)) if (path / "dataset_dict.json").exists() else read_dataset(path)
    pv = publish_with_config(data, ns.repo, config_from_namespace(PublishConfig, ns))
    out.print(f"[green]published {ns.repo} {pv.version} ({pv.commit[:12]}) at {pv.location}")
    out.print(pv.load_snippet())


def cmd_pull(ns: Namespace) -> None:
    from ..dataset_io import write_dataset
    from ..hub import PullConfig, pull_with_config

    data = pull_with_config(ns.repo, config_from_namespace(PullConfig, ns))
    if isinstance(data, dict):  # a DatasetDict: save every split
        Path(ns.output).parent.mkdir(parents=True, exist_ok=True)
        data.save_to_disk(ns.output)
    else:
        write_dataset(data, ns.output)
    out.print(f"[green]pulled {ns.repo} {ns.config_name}@{ns.revision} to {ns.output}")


def cmd_versions(ns: Namespace) -> None:
    from rich.table import Table

    from ..hub import versions

    table = Table(title=f"versions of {ns.repo}")
    for col in ("version", "commit", "date", "message"):
        table.add_column(col)
    for v in versions(ns.repo, store=ns.store):
        table.add_row(v.version, v.commit[:12], str(v.date or ""), v.message or "")
    out.print(table)


def cmd_mirror(ns: Namespace) -> None:
    from ..hub import MirrorConfig, mirror_with_config

    done = mirror_with_config(ns.repo, config_from_namespace(MirrorConfig, ns))
    out.print(f"[green]mirrored {len(done)} version(s): {', '.join(p.version for p in done) or 'none needed'}")


def cmd_eval(ns: Namespace) -> None:
    from ..evaluation import EvalConfig, evaluate

    cfg = config_from_namespace(EvalConfig, ns)
    _, record = evaluate(cfg)
    m = record["metrics"]
    from rich.table import Table

    table = Table(title=f"{cfg.model} on {cfg.task}")
    for col in ("metric", "value"):
        table.add_column(col)
    for k, v in m["pass@k"].items():
        table.add_row(f"pass@{k}", f"{v:.1%}")
    for key in ("greedy_pass@1", "compile_rate"):
        if key in m:
            table.add_row(key, f"{m[key]:.1%}")
    table.add_row("solved", f"{m['solved']}/{m['problems']}")
    for key in ("median_length", "median_runtime_ns"):
        if m.get(key) is not None:
            table.add_row(key, f"{m[key]:.4g}")
    out.print(table)
    out.print(f"[green]run saved to {cfg.run_dir}")


def cmd_compare(ns: Namespace) -> None:
    from rich.table import Table

    from ..evaluation import compare_runs, load_run, write_report

    runs = {Path(p).name: load_run(p)[1] for p in ns.runs}  # runs are named by their folders
    base = Path(ns.base).name
    cmp = compare_runs(runs, base=base, ks=ns.ks, resamples=ns.resamples, seed=ns.seed, confidence=ns.confidence)
    report = write_report(cmp, ns.output)
    table = Table(title=f"compared with {base} on {cmp['common_problems']} commonly solved problems")
    ks = sorted({k for m in cmp["models"].values() for k in m["metrics"]["pass@k"]}, key=int)
    for col in [
        "model",
        *[f"pass@{k}" for k in ks],
        "compile",
        "length ratio",
        "runtime ratio",
        "speed-up",
        "% optimised",
        f"Δ pass@1 pp [{ns.confidence:.0%}]",
    ]:
        table.add_column(col)
    for name, m in cmp["models"].items():
        r, s = m["ratios_to_base"], m.get("speedup") or {}

        def fmt(v, pct=False):
            return "–" if v is None else (f"{v:.1%}" if pct else f"{v:.3f}")

        table.add_row(
            name,
            *[fmt(m["metrics"]["pass@k"].get(k), True) for k in ks],
            fmt(m["metrics"]["compile_rate"], True),
            fmt(r.get("length")),
            fmt(r.get("runtime")),
            fmt(s.get("speedup")),
            fmt(s.get("optimised"), True),
            _delta(m["vs_base"]["pass@k"].get("1")) if name != base else "base",
        )
    out.print(table)
    out.print(f"[green]report: {report}")


def _show_parser() -> ArgumentParser:
    p = config_parser(None, description="Summarise a pipeline dataset.", positionals=[("input", "dataset path")])
    p.add_argument("--limit", type=int, default=20, help="rows in the per-problem table")
    return p


def _stats_parser() -> ArgumentParser:
    p = config_parser(
        None,
        description="Code-Optimise Table-1 statistics and pair counts per kind.",
        positionals=[("input", "dataset path")],
    )
    p.add_argument("--min_passing", type=int, default=2, help="filter: minimum passing samples")
    p.add_argument("--min_failing", type=int, default=1, help="filter: minimum failing samples")
    return p


def _run_parser() -> ArgumentParser:
    p = ArgumentParser(description="Run (or resume) a whole pipeline from one YAML file.")
    p.add_argument("pipeline", help="pipeline YAML (stages in order, each with its options)")
    p.add_argument("--from", dest="start", default=None, help="start at this stage (earlier ones must be done)")
    p.add_argument("--until", default=None, help="stop after this stage")
    p.add_argument("--output_dir", default=None, help="override the pipeline's output_dir")
    p.add_argument(
        "--set",
        type=list[str],
        default=None,
        help="override stage options, e.g. --set '[problems.path=data/mbpp.jsonl, sample.n=4]' (values read as YAML)",
    )
    return p


def _hub_parser(cls_name: str, description: str, positionals: list[tuple[str, str]]) -> Callable[[], ArgumentParser]:
    def make() -> ArgumentParser:
        from .. import hub

        return config_parser(getattr(hub, cls_name), description=description, positionals=positionals)

    return make


def _versions_parser() -> ArgumentParser:
    p = ArgumentParser(description="List the published versions of a dataset.")
    p.add_argument("repo", help="dataset repo id")
    p.add_argument("--store", default=None, help="local | hub | a local store folder (default: $CODEPREF_STORE)")
    return p


def _eval_parser() -> ArgumentParser:
    from ..evaluation import EvalConfig

    return config_parser(EvalConfig, description="Evaluate a model on a task: sample, execute, (time), metrics.")


def _compare_parser() -> ArgumentParser:
    p = ArgumentParser(description="Compare eval runs against a base run: tables, plots, Markdown report.")
    p.add_argument("runs", nargs="+", help="eval run folders (written by codepref eval)")
    p.add_argument("--base", required=True, help="the base run (its folder; runs are named by their folders)")
    p.add_argument("--output", default="eval-report", help="folder for report.md, plots and comparison.json")
    p.add_argument("--ks", type=list[int], default=[1, 10, 100], help="k values of pass@k and best@k")
    p.add_argument("--resamples", type=int, default=10_000, help="paired bootstrap resamples (over problems)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the permutation test")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    return p


def _delta(entry: dict | None) -> str:
    if not entry:
        return "–"
    low, high = 100 * entry["low"], 100 * entry["high"]
    return f"{100 * entry['estimate']:+.1f} [{low:+.0f},{high:+.0f}] p={entry['p_value']:.2f}"


COMMANDS: dict[str, Command] = {
    "publish": Command(
        "Publish a dataset as one config of a new, immutable version.",
        _hub_parser(
            "PublishConfig",
            "Publish a dataset config as a new version (a git tag).",
            [
                ("input", "dataset to publish (folder, .jsonl or .parquet)"),
                ("repo", "dataset repo id, e.g. my-org/humaneval-prefs"),
            ],
        ),
        cmd_publish,
    ),
    "pull": Command(
        "Pull one config of a dataset at a version.",
        _hub_parser(
            "PullConfig",
            "Load a published config at a revision and save it.",
            [("repo", "dataset repo id"), ("output", "where to write the dataset")],
        ),
        cmd_pull,
    ),
    "versions": Command("List the versions of a dataset.", _versions_parser, cmd_versions),
    "mirror": Command(
        "Copy versions between the local store and the Hub.",
        _hub_parser(
            "MirrorConfig", "Copy versions between the local store and the Hub.", [("repo", "dataset repo id")]
        ),
        cmd_mirror,
    ),
    "eval": Command(
        "Evaluate a model on a benchmark (pass@k, compile rate, runtime, length).", _eval_parser, cmd_eval
    ),
    "compare": Command(
        "Compare eval runs with a base run; writes plots and a Markdown report.", _compare_parser, cmd_compare
    ),
    "run": Command("Run a whole pipeline from one YAML file (resumable).", _run_parser, cmd_run),
    "stats": Command("Table-1-style statistics and pair counts.", _stats_parser, cmd_stats),
    "show": Command("Summarise a pipeline dataset.", _show_parser, cmd_show),
}
