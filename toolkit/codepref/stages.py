"""Every stage of codepref, declared once.

:data:`STAGES` is the one place a stage is declared: its config dataclass, its function, what it
reads and whether it resumes. The ``codepref <stage>`` subcommands (:mod:`codepref.cli`) and the
stages of a pipeline file (:mod:`codepref.pipeline`) are both generated from it, and both read a
stage's options through one parser (:func:`config_parser`: jsonargparse over the config dataclass),
so a field added to a config is at once a CLI flag with its help, a ``--config`` / pipeline YAML key,
and a value checked the same way everywhere (as TRL's ``make_parser`` serves both ``trl dpo`` and
``python dpo.py --config``). Nested configs (``EvalConfig.sampling``) are options ``sampling.n`` on the
command line and mappings in YAML.

A stage function takes ``(dataset, config)`` (or ``(config)`` when it reads no dataset) and returns a
``Dataset``; a resumable one also takes ``work_dir=`` (see :mod:`codepref.resumable`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from .config import config_from_dict, option_help
from .errors import CodeprefError, ConfigError


@dataclass(frozen=True)
class StageSpec:
    """A stage: its config class and its function as ``module:attribute`` paths, and how it is run."""

    config: str
    function: str
    needs_input: bool = True  # reads the previous stage's dataset
    resumable: bool = False  # takes work_dir= for shard-level resume
    reads_outputs: bool = False  # takes stage_outputs= (every stage's output folder), e.g. publish
    help: str = ""
    cli: bool = True  # also a ``codepref NAME [IN] OUT`` subcommand (pipeline-only stages say False)
    summary: str | None = None  # what the CLI prints after writing: "show" or "stats"

    def load(self) -> tuple[type, Callable[..., Any]]:
        return _resolve(self.config), _resolve(self.function)


def _resolve(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module, __package__), attr)


STAGES: dict[str, StageSpec] = {
    "load": StageSpec(
        ".dataset_io:LoadConfig",
        ".dataset_io:load_stage",
        needs_input=False,
        help="Start from an existing dataset (a folder, .jsonl or .parquet file).",
    ),
    "problems": StageSpec(
        ".problems:ProblemsConfig",
        ".problems:load_problems",
        needs_input=False,
        help="Load problems (HumanEval, MBPP, CodeContests, any dataset) into the problem schema.",
    ),
    "seed": StageSpec(
        ".sampling:SeedConfig",
        ".sampling:seed_problems",
        needs_input=False,
        help="Turn code snippets into new problems with the model (CodeDPO's seed stage).",
    ),
    "submissions": StageSpec(
        ".problems.submissions:SubmissionsConfig",
        ".problems.submissions:submissions",
        help="Use a benchmark's own judged submissions as samples (CodeContests: OK vs other verdicts; IotaCode).",
    ),
    "sample": StageSpec(
        ".sampling:SampleConfig",
        ".sampling:sample",
        resumable=True,
        help="Sample n completions per problem and extract programs (adds completions, samples).",
    ),
    "execute": StageSpec(
        ".execution:ExecuteConfig",
        ".execution:execute",
        resumable=True,
        summary="show",
        help="Run every sample against its tests in the sandbox (adds exec_matrix, gen_exec_matrix, passed).",
    ),
    "time": StageSpec(
        ".timing:TimingConfig",
        ".timing:time_samples",
        resumable=True,
        summary="show",
        help="Measure runtimes of passing samples in the sandbox: count (exact instruction counts), "
        "code-optimise, interleaved.",
    ),
    "rank": StageSpec(
        ".ranking:RankConfig",
        ".ranking:rank",
        help="Score samples and tests: pass_count, self_validation (CodeDPO), minimax (DSTC), dual_agreement.",
    ),
    "pairs": StageSpec(
        ".pairs:PairsConfig",
        ".pairs:build_pairs",
        summary="stats",
        help="Build preference pairs with one paper's policy (adds the pairs column).",
    ),
    "export": StageSpec(
        ".export:ExportConfig",
        ".export:export",
        summary="stats",
        help="Flatten pairs into a TRL format: preference, reward, kto, sft or candidates.",
    ),
    "publish": StageSpec(
        ".hub:PublishStageConfig",
        ".hub.stage:publish_stage",
        needs_input=False,
        reads_outputs=True,
        cli=False,  # the command line has `codepref publish IN REPO` (one dataset); see codepref.cli
        help="Publish several stage outputs as configs of one new dataset version.",
    ),
}


def register_stage(name: str, spec: StageSpec) -> None:
    """Add a stage: it is then a pipeline stage and (unless ``spec.cli`` is False) a CLI subcommand."""
    STAGES[name] = spec


def config_parser(
    cls: type | None,
    *,
    description: str = "",
    positionals: Sequence[tuple[str, str]] = (),
    exit_on_error: bool = True,
) -> ArgumentParser:
    """The one parser of a config class: ``--config FILE``, positionals, and one option per field."""
    p = ArgumentParser(description=description, exit_on_error=exit_on_error)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    for name, help_text in positionals:
        p.add_argument(name, help=help_text)
    if cls is not None:
        p.add_class_arguments(cls, as_group=False)
        helps = option_help(cls)
        for action in p._actions:
            if helps.get(action.dest):
                action.help = helps[action.dest]
    return p


@functools.cache
def _options_parser(cls: type) -> ArgumentParser:
    return config_parser(cls, exit_on_error=False)


def parse_config(cls: type, options: Mapping[str, Any] | None) -> Any:
    """A config from a mapping (a YAML stage's options), through the same parser as the CLI flags.

    Unknown options, values of the wrong type and values the config rejects raise ``ConfigError``.
    """
    options = dict(options or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(options) - fields)
    if bad:
        raise ConfigError(f"unknown options {bad}; takes {sorted(fields)}")
    try:
        parsed = _options_parser(cls).parse_object(options)
        return config_from_namespace(cls, parsed)
    except CodeprefError as e:
        raise ConfigError(str(e)) from None
    except Exception as e:  # jsonargparse's ArgumentError, a config's TypeError/ValueError
        raise ConfigError(_first_line(e)) from None


def config_from_namespace(cls: type, ns: Any) -> Any:
    """The config a parsed namespace (CLI or YAML) describes."""
    data = ns.as_dict() if hasattr(ns, "as_dict") else dict(ns)
    return config_from_dict(cls, data)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
