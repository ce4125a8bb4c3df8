"""``codepref`` command line: one subcommand per pipeline stage, plus the commands in ``commands``.

The stage subcommands are generated from :data:`codepref.stages.STAGES` (the registry pipelines
read too); each stage's flags come from its config dataclass through
:func:`codepref.stages.config_parser`, so ``codepref sample IN OUT --n 8``, ``--config sample.yaml``
and a pipeline's ``- sample: {n: 8}`` all mean exactly ``sample(ds, SampleConfig(n=8))``. The CLI
only parses, calls the library, shows progress and prints summaries.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace
from rich.console import Console
from rich.logging import RichHandler

from .. import __version__, progress
from ..errors import CodeprefError
from ..stages import STAGES, StageSpec, config_from_namespace, config_parser
from .commands import COMMANDS, Command, out
from .rich_progress import RichReporter

console = Console(stderr=True)


def _stage_command(name: str, spec: StageSpec) -> Command:
    """``codepref NAME [IN] OUT [flags]``: read IN, run the stage, write OUT (resumable stages keep
    finished shards in ``OUT.partial`` until OUT is written)."""
    positionals = [("output", "where to write the dataset")]
    if spec.needs_input:
        positionals.insert(0, ("input", "input dataset (folder, .jsonl or .parquet)"))

    def parser() -> ArgumentParser:
        cls, _ = spec.load()
        return config_parser(cls, description=spec.help, positionals=positionals)

    def run(ns: Namespace) -> None:
        from ..dataset_io import read_dataset, write_dataset

        cls, fn = spec.load()
        cfg = config_from_namespace(cls, ns)
        output = Path(ns.output)
        work = output.with_name(output.name + ".partial")
        kwargs = {"work_dir": work} if spec.resumable else {}
        result = fn(read_dataset(ns.input), cfg, **kwargs) if spec.needs_input else fn(cfg, **kwargs)
        write_dataset(result, output)
        if spec.resumable:
            shutil.rmtree(work, ignore_errors=True)
        out.print(f"[green]{name}: wrote {len(result)} rows to {output}")
        if spec.summary == "show":
            from .show import render

            render(result, console=out, example=False)
        elif spec.summary == "stats":
            from .show import render_stats

            render_stats(result, console=out)

    return Command(spec.help, parser, run)


def commands() -> dict[str, Command]:
    """Every subcommand: the registered stages (in pipeline order), then the other commands."""
    stages = {name: _stage_command(name, spec) for name, spec in STAGES.items() if spec.cli}
    return {**stages, **COMMANDS}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="codepref", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"codepref {__version__}")
    parser.add_argument("--log_level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    sub = parser.add_subcommands(dest="command")
    for name, command in commands().items():
        sub.add_subcommand(name, command.parser(), help=command.help)
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
        commands()[name].run(ns[name])
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
