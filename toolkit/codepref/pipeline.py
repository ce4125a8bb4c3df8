"""Whole pipelines from one YAML file: ``codepref run PIPELINE.yaml``.

```yaml
output_dir: runs/demo          # every stage's output is saved here, under the stage's name
stages:
  - problems: {source: humaneval, limit: 10}
  - sample: {n: 8, temperature: 0.6}
  - execute: {timeout: 3}
  - pairs: {policy: code-optimise}
  - name: dpo                  # a stage may be named, and may read any earlier stage's output
    export: {format: preference}
    input: pairs
```

The stages and their options are those of :data:`codepref.stages.STAGES` (the same as the CLI's
subcommands and flags). Every stage config is validated before any work starts. A finished stage is never redone:
its output folder holds a ``.codepref-done`` marker with the fingerprint of its config and
input; a stage interrupted half-way resumes from its saved shards (``<name>.partial``).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset, load_from_disk

from .config import config_fingerprint
from .errors import ConfigError
from .stages import STAGES, StageSpec, parse_config, register_stage

__all__ = ["DONE", "STAGES", "PlannedStage", "StageSpec", "plan", "register_stage", "run_pipeline"]

logger = logging.getLogger(__name__)
DONE = ".codepref-done"


@dataclass
class PlannedStage:
    name: str
    kind: str
    config: Any
    input: str | None


def plan(pipeline: dict[str, Any]) -> tuple[Path, list[PlannedStage]]:
    """Validate a pipeline document and build every stage config (no work is done)."""
    if not isinstance(pipeline, dict) or not isinstance(pipeline.get("stages"), list) or not pipeline["stages"]:
        raise ConfigError("a pipeline needs a non-empty 'stages' list")
    out_dir = Path(pipeline.get("output_dir", "pipeline-output"))
    stages: list[PlannedStage] = []
    for i, item in enumerate(pipeline["stages"]):
        if not isinstance(item, dict):
            raise ConfigError(f"stage {i}: expected a mapping like {{sample: {{n: 8}}}}, got {item!r}")
        kinds = [k for k in item if k in STAGES]
        unknown = [k for k in item if k not in STAGES and k not in ("name", "input")]
        if unknown or len(kinds) != 1:
            raise ConfigError(
                f"stage {i}: expected exactly one of {sorted(STAGES)} (plus optional name/input), "
                f"got keys {sorted(item)}"
            )
        kind = kinds[0]
        name = str(item.get("name", kind))
        if any(s.name == name for s in stages):
            raise ConfigError(f"stage {i}: the name {name!r} is used twice; give one stage a 'name:'")
        cls, _ = STAGES[kind].load()
        options = item[kind] or {}
        if not isinstance(options, dict):
            raise ConfigError(f"stage {i} ({name}): options must be a mapping, got {options!r}")
        try:
            config = parse_config(cls, options)
        except ConfigError as e:
            raise ConfigError(f"stage {i} ({name}): {e}") from None
        source = item.get("input", stages[-1].name if stages else None)
        if STAGES[kind].needs_input:
            if source is None:
                raise ConfigError(f"stage {i} ({name}): {kind} needs an input; no earlier stage")
            if not any(s.name == source for s in stages):
                raise ConfigError(f"stage {i} ({name}): input {source!r} is not an earlier stage")
        else:
            source = None
        stages.append(PlannedStage(name, kind, config, source))
    return out_dir, stages


def load_pipeline(path: str | Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read pipeline {str(path)!r}: {e}") from None
    return doc


def _select(stages: list[PlannedStage], start: str | None, until: str | None) -> list[PlannedStage]:
    names = [s.name for s in stages]
    for label, value in (("--from", start), ("--until", until)):
        if value is not None and value not in names:
            raise ConfigError(f"{label} {value!r} is not a stage of this pipeline ({', '.join(names)})")
    a = names.index(start) if start else 0
    b = names.index(until) + 1 if until else len(names)
    return stages[a:b]


def apply_overrides(pipeline: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``pipeline`` with ``STAGE.OPTION=VALUE`` overrides (``VALUE`` read as YAML; nested options
    as ``STAGE.sampling.n=4``); a stage is named by its ``name:`` or its kind. E.g. an offline run of a
    pipeline that names a Hub dataset: ``problems.path=data/mbpp.jsonl``."""
    doc = copy.deepcopy(pipeline)
    for text in overrides:
        target, sep, value = text.partition("=")
        parts = target.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"override {text!r}: expected STAGE.OPTION=VALUE")
        stages = doc.get("stages") if isinstance(doc, dict) else None
        matches = [
            item
            for item in stages or []
            if isinstance(item, dict)
            and item.get("name", next((k for k in item if k not in ("name", "input")), None)) == parts[0]
        ]
        if len(matches) != 1:
            raise ConfigError(f"override {text!r}: no single stage named {parts[0]!r} in the pipeline")
        item = matches[0]
        kind = next(k for k in item if k not in ("name", "input"))
        if item.get(kind) is None:  # `- time: {}` written as `- time:`
            item[kind] = {}
        node = item[kind]
        for key in parts[1:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a mapping")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {text!r}: the value is not YAML ({e})") from None
    return doc


def run_pipeline(
    pipeline: dict[str, Any] | str | Path,
    *,
    start: str | None = None,
    until: str | None = None,
    output_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Path]:
    """Run (or resume) a pipeline; returns each stage's output folder. ``overrides``: see :func:`apply_overrides`."""
    doc = load_pipeline(pipeline) if isinstance(pipeline, str | Path) else pipeline
    if overrides:
        doc = apply_overrides(doc, overrides)
    out_dir, stages = plan(doc)
    out_dir = Path(output_dir) if output_dir is not None else out_dir
    selected = _select(stages, start, until)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {s.name: out_dir / s.name for s in stages}
    fingerprints: dict[str, str] = {}
    for stage in stages:
        upstream = fingerprints.get(stage.input, "") if stage.input else ""
        if STAGES[stage.kind].reads_outputs:
            upstream = json.dumps(fingerprints, sort_keys=True)
        fingerprints[stage.name] = config_fingerprint(stage.kind, stage.config, upstream)
    for stage in selected:
        target = outputs[stage.name]
        marker = target / DONE
        if marker.exists() and json.loads(marker.read_text()).get("fingerprint") == fingerprints[stage.name]:
            logger.info("%s: done already, skipping", stage.name)
            continue
        _, fn = STAGES[stage.kind].load()
        kwargs: dict[str, Any] = {}
        if STAGES[stage.kind].resumable:
            kwargs["work_dir"] = out_dir / f"{stage.name}.partial"
        if STAGES[stage.kind].reads_outputs:
            unfinished = [n for n, p in outputs.items() if n != stage.name and not (p / DONE).exists()]
            kwargs["stage_outputs"] = {n: p for n, p in outputs.items() if n not in unfinished and n != stage.name}
        if stage.input is not None:
            src = outputs[stage.input]
            if not (src / DONE).exists():
                raise ConfigError(f"{stage.name}: its input stage {stage.input!r} has not finished; run it first")
            result = fn(load_from_disk(str(src)), stage.config, **kwargs)
        else:
            result = fn(stage.config, **kwargs)
        _save(result, target)
        marker.write_text(json.dumps({"fingerprint": fingerprints[stage.name], "stage": stage.kind}))
        shutil.rmtree(out_dir / f"{stage.name}.partial", ignore_errors=True)
        logger.info("%s: wrote %s", stage.name, target)
    return outputs


def _save(result: Any, target: Path) -> None:
    if isinstance(result, Dataset):
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        result.save_to_disk(str(tmp), num_shards=1 if len(result) == 0 else None)  # an empty stage output too
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    else:  # e.g. publish returns a record of what it published
        target.mkdir(parents=True, exist_ok=True)
        (target / "result.json").write_text(json.dumps(result, default=str, indent=2))
