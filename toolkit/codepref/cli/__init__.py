"""``codepref`` command line: one subcommand per pipeline stage.

Each stage's flags come from its config dataclass (the same class the Python API takes),
so ``codepref sample IN OUT --n 8`` and ``--config sample.yaml`` mean exactly what
``sample(ds, SampleConfig(n=8))`` means. The CLI only parses, calls the stage, shows
progress and prints summaries; all work happens in the library.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from rich.console import Console
from rich.logging import RichHandler

from .. import __version__, progress
from ..config import field_help
from ..errors import CodeprefError
from .rich_progress import RichReporter

console = Console(stderr=True)
out = Console()


def _config_parser(description: str, cls: type | None, positionals: list[tuple[str, str]]) -> ArgumentParser:
    p = ArgumentParser(description=description)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    for name, help_text in positionals:
        p.add_argument(name, help=help_text)
    if cls is not None:
        p.add_class_arguments(cls, as_group=False)
        helps = field_help(cls)
        for action in p._actions:
            if action.dest in helps and helps[action.dest]:
                action.help = helps[action.dest]
    return p


def _build(cls: type, ns: Namespace) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(ns).items() if k in names})


def _work_dir(out_path: str) -> Path:
    p = Path(out_path)
    return p.with_name(p.name + ".partial")


# ---- commands ------------------------------------------------------------------------------------------


def cmd_problems(ns: Namespace) -> None:
    from ..dataset_io import write_dataset
    from ..problems import ProblemsConfig, load_problems

    cfg = _build(ProblemsConfig, ns)
    ds = load_problems(cfg)
    write_dataset(ds, ns.output)
    out.print(f"[green]wrote {len(ds)} problems from {cfg.source!r} to {ns.output}")


def cmd_sample(ns: Namespace) -> None:
    from ..dataset_io import read_dataset, write_dataset
    from ..sampling import SampleConfig, sample

    cfg = _build(SampleConfig, ns)
    ds = read_dataset(ns.input)
    work = _work_dir(ns.output)
    result = sample(ds, cfg, work_dir=work)
    write_dataset(result, ns.output)
    shutil.rmtree(work, ignore_errors=True)
    n = sum(len(s) for s in result["samples"]) if "samples" in result.column_names else 0
    out.print(f"[green]wrote {len(result)} problems / {n} samples to {ns.output}")


def _transform(stage: str, cls_path: tuple[str, str], fn_path: tuple[str, str]) -> Callable[[Namespace], None]:
    """A command ``codepref STAGE IN OUT [flags]`` that applies one dataset transform."""

    def run(ns: Namespace) -> None:
        import importlib

        from ..dataset_io import read_dataset, write_dataset

        cls = getattr(importlib.import_module(cls_path[0], __package__), cls_path[1])
        fn = getattr(importlib.import_module(fn_path[0], __package__), fn_path[1])
        cfg = _build(cls, ns)
        kwargs = {"work_dir": _work_dir(ns.output)} if stage in _RESUMABLE else {}
        result = fn(read_dataset(ns.input), cfg, **kwargs)
        write_dataset(result, ns.output)
        if kwargs:
            shutil.rmtree(kwargs["work_dir"], ignore_errors=True)
        out.print(f"[green]{stage}: wrote {len(result)} rows to {ns.output}")
        if stage in ("execute", "time"):
            from .show import render

            render(result, console=out, example=False)
        if stage in ("pairs", "export"):
            from .show import render_stats

            render_stats(result, console=out)

    return run


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

    outputs = run_pipeline(ns.pipeline, start=ns.start, until=ns.until, output_dir=ns.output_dir)
    out.print(f"[green]pipeline done: {', '.join(f'{k} → {v}' for k, v in outputs.items())}")


def cmd_publish(ns: Namespace) -> None:
    from datasets import load_from_disk

    from ..dataset_io import read_dataset
    from ..hub import PublishConfig, publish_with_config

    path = Path(ns.input)
    data = load_from_disk(str(path)) if (path / "dataset_dict.json").exists() else read_dataset(path)
    pv = publish_with_config(data, ns.repo, _build(PublishConfig, ns))
    out.print(f"[green]published {ns.repo} {pv.version} ({pv.commit[:12]}) at {pv.location}")
    out.print(pv.load_snippet())


def cmd_pull(ns: Namespace) -> None:
    from ..dataset_io import write_dataset
    from ..hub import PullConfig, pull_with_config

    data = pull_with_config(ns.repo, _build(PullConfig, ns))
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

    done = mirror_with_config(ns.repo, _build(MirrorConfig, ns))
    out.print(f"[green]mirrored {len(done)} version(s): {', '.join(p.version for p in done) or 'none needed'}")


def cmd_eval(ns: Namespace) -> None:
    from ..evaluation import EvalConfig, evaluate

    cfg = _build(EvalConfig, ns)
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
    cmp = compare_runs(runs, base=base, ks=ns.ks)
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
        )
    out.print(table)
    out.print(f"[green]report: {report}")


_RESUMABLE = {"execute", "time"}
_IO = [("input", "input dataset (folder, .jsonl or .parquet)"), ("output", "where to write the dataset")]
# name -> (help, config class (module, name), transform (module, name))
_TRANSFORMS = {
    "execute": (
        "Run every sample against its tests in the sandbox (adds exec_matrix, gen_exec_matrix, passed).",
        ("..execution", "ExecuteConfig"),
        ("..execution", "execute"),
    ),
    "time": (
        "Measure runtimes of passing samples in the sandbox: count (exact instruction counts), code-optimise, "
        "interleaved.",
        ("..timing", "TimingConfig"),
        ("..timing", "time_samples"),
    ),
    "rank": (
        "Score samples and tests: pass_count, self_validation (CodeDPO), minimax (DSTC), dual_agreement.",
        ("..ranking", "RankConfig"),
        ("..ranking", "rank"),
    ),
    "pairs": (
        "Build preference pairs with one paper's policy (adds the pairs column).",
        ("..pairs", "PairsConfig"),
        ("..pairs", "build_pairs"),
    ),
    "export": (
        "Flatten pairs into a TRL format: preference, reward, kto, sft or candidates.",
        ("..export", "ExportConfig"),
        ("..export", "export"),
    ),
}


def _commands() -> dict[str, tuple[str, Callable[[], ArgumentParser], Callable[[Namespace], None]]]:
    import importlib

    from ..problems import ProblemsConfig

    def sample_parser() -> ArgumentParser:
        from ..sampling import SampleConfig

        return _config_parser(
            "Sample n completions per problem and extract programs (adds completions, samples).", SampleConfig, _IO
        )

    def show_parser() -> ArgumentParser:
        p = _config_parser("Summarise a pipeline dataset.", None, [("input", "dataset path")])
        p.add_argument("--limit", type=int, default=20, help="rows in the per-problem table")
        return p

    def stats_parser() -> ArgumentParser:
        p = _config_parser(
            "Code-Optimise Table-1 statistics and pair counts per kind.", None, [("input", "dataset path")]
        )
        p.add_argument("--min_passing", type=int, default=2, help="filter: minimum passing samples")
        p.add_argument("--min_failing", type=int, default=1, help="filter: minimum failing samples")
        return p

    def transform_parser(name: str) -> Callable[[], ArgumentParser]:
        help_text, (mod, cls), _ = _TRANSFORMS[name]
        return lambda: _config_parser(help_text, getattr(importlib.import_module(mod, __package__), cls), _IO)

    commands = {
        "problems": (
            "Load problems (HumanEval, MBPP, any dataset) into the problem schema.",
            lambda: _config_parser(
                "Load problems into the problem schema.", ProblemsConfig, [("output", "where to write the dataset")]
            ),
            cmd_problems,
        ),
        "sample": ("Sample completions and extract programs.", sample_parser, cmd_sample),
    }
    for name, (help_text, cls_path, fn_path) in _TRANSFORMS.items():
        commands[name] = (help_text, transform_parser(name), _transform(name, cls_path, fn_path))

    def run_parser() -> ArgumentParser:
        p = ArgumentParser(description="Run (or resume) a whole pipeline from one YAML file.")
        p.add_argument("pipeline", help="pipeline YAML (stages in order, each with its options)")
        p.add_argument("--from", dest="start", default=None, help="start at this stage (earlier ones must be done)")
        p.add_argument("--until", default=None, help="stop after this stage")
        p.add_argument("--output_dir", default=None, help="override the pipeline's output_dir")
        return p

    def hub_parser(
        cls_name: str, description: str, positionals: list[tuple[str, str]]
    ) -> Callable[[], ArgumentParser]:
        def make() -> ArgumentParser:
            from .. import hub

            return _config_parser(description, getattr(hub, cls_name), positionals)

        return make

    def versions_parser() -> ArgumentParser:
        p = ArgumentParser(description="List the published versions of a dataset.")
        p.add_argument("repo", help="dataset repo id")
        p.add_argument("--store", default=None, help="local | hub | a local store folder (default: $CODEPREF_STORE)")
        return p

    commands["publish"] = (
        "Publish a dataset as one config of a new, immutable version.",
        hub_parser(
            "PublishConfig",
            "Publish a dataset config as a new version (a git tag).",
            [
                ("input", "dataset to publish (folder, .jsonl or .parquet)"),
                ("repo", "dataset repo id, e.g. my-org/humaneval-prefs"),
            ],
        ),
        cmd_publish,
    )
    commands["pull"] = (
        "Pull one config of a dataset at a version.",
        hub_parser(
            "PullConfig",
            "Load a published config at a revision and save it.",
            [("repo", "dataset repo id"), ("output", "where to write the dataset")],
        ),
        cmd_pull,
    )
    commands["versions"] = ("List the versions of a dataset.", versions_parser, cmd_versions)
    commands["mirror"] = (
        "Copy versions between the local store and the Hub.",
        hub_parser(
            "MirrorConfig", "Copy versions between the local store and the Hub.", [("repo", "dataset repo id")]
        ),
        cmd_mirror,
    )

    def eval_parser() -> ArgumentParser:
        from ..evaluation import EvalConfig

        return _config_parser("Evaluate a model on a task: sample, execute, (time), metrics.", EvalConfig, [])

    def compare_parser() -> ArgumentParser:
        p = ArgumentParser(description="Compare eval runs against a base run: tables, plots, Markdown report.")
        p.add_argument("runs", nargs="+", help="eval run folders (written by codepref eval)")
        p.add_argument("--base", required=True, help="the base run (its folder; runs are named by their folders)")
        p.add_argument("--output", default="eval-report", help="folder for report.md, plots and comparison.json")
        p.add_argument("--ks", type=list[int], default=[1, 10, 100], help="k values of pass@k and best@k")
        return p

    commands["eval"] = (
        "Evaluate a model on a benchmark (pass@k, compile rate, runtime, length).",
        eval_parser,
        cmd_eval,
    )
    commands["compare"] = (
        "Compare eval runs with a base run; writes plots and a Markdown report.",
        compare_parser,
        cmd_compare,
    )
    commands["run"] = ("Run a whole pipeline from one YAML file (resumable).", run_parser, cmd_run)
    commands["stats"] = ("Table-1-style statistics and pair counts.", stats_parser, cmd_stats)
    commands["show"] = ("Summarise a pipeline dataset.", show_parser, cmd_show)
    return commands


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="codepref", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"codepref {__version__}")
    parser.add_argument("--log_level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    sub = parser.add_subcommands(dest="command")
    for name, (help_text, make, _) in _commands().items():
        sub.add_subcommand(name, make(), help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except CodeprefError as e:  # raised by a config's __post_init__ during parsing
        console.print(f"[red]error:[/red] {e}")
        return 2
    logging.basicConfig(
        level=ns.log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    import datasets

    datasets.disable_progress_bars()
    name = ns.command
    previous = progress.use_reporter(RichReporter(console))
    try:
        _commands()[name][2](ns[name])
    except CodeprefError as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished shards are kept; run the same command again to resume")
        return 130
    finally:
        progress.use_reporter(previous)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
