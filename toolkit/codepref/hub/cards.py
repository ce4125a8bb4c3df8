"""Dataset cards: rendered from the templates in ``dataset_cards/`` and validated offline.

A card is README.md: Hub YAML metadata (license, task_categories, tags, size_categories,
``configs``, ``dataset_info``, plus a ``codepref`` block holding provenance and per-config
statistics) and a body built from ``base.md`` + one ``<kind>.md`` section per config. The
card is re-rendered from its own metadata on every publish, so statistics of configs
published earlier survive a later publish of another config.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

import yaml
from datasets import DatasetDict, Features
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from .. import __version__
from ..errors import ConfigError, DataError
from ..stats import dataset_stats

KINDS = ("problems", "samples", "pairs", "sft", "kto", "candidates", "generic")
REQUIRED_KEYS = ("license", "task_categories", "tags", "size_categories", "configs", "pretty_name")
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
BASE_TAGS = ["code", "preference-data", "dpo", "execution-verified", "codepref"]
_SECRET_KEY = re.compile(r"token|secret|password|api[_-]?key|authorization|credential", re.I)
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_PROVENANCE_LABELS = {
    "model": "Model",
    "model_revision": "Model revision",
    "sampling": "Sampling parameters",
    "source_dataset": "Source dataset",
    "source_revision": "Source dataset revision",
    "sandbox": "Sandbox (isolation level and limits)",
    "timing": "Timing (mode and host CPU)",
    "codepref_version": "codepref version",
    "pipeline_config": "Pipeline config",
}


@dataclass
class CardInfo:
    """What a publisher tells the card beyond the data itself; everything is optional."""

    pretty_name: str | None = field(default=None, metadata={"help": "Human-readable dataset title"})
    description: str | None = field(default=None, metadata={"help": "One paragraph on what this dataset is"})
    license: str | None = field(default=None, metadata={"help": "Hub license id (kept from the last card if unset)"})
    tags: list[str] = field(default_factory=list, metadata={"help": "Extra Hub tags"})
    provenance: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "model, model_revision, sampling, source_dataset, source_revision, sandbox, timing, "
            "pipeline_config (rendered where present)"
        },
    )
    kinds: dict[str, str] = field(
        default_factory=dict, metadata={"help": "config name -> card kind, where the name does not tell"}
    )

    @classmethod
    def coerce(cls, value: CardInfo | dict[str, Any] | None) -> CardInfo:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - names
            if unknown:  # unknown keys are provenance (e.g. a whole pipeline block)
                value = {
                    **{k: v for k, v in value.items() if k in names},
                    "provenance": {**value.get("provenance", {}), **{k: value[k] for k in unknown}},
                }
            return cls(**value)
        raise ConfigError(f"card must be a CardInfo, a dict or None, got {type(value).__name__}")


def cards_dir() -> Path:
    """The template folder: ``$CODEPREF_CARDS_DIR``, else the package's own ``dataset_cards`` (package data;
    the repository's top-level ``dataset_cards/`` is a link to it)."""
    env = os.environ.get("CODEPREF_CARDS_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent / "dataset_cards")
    for c in candidates:
        if (c / "base.md").is_file():
            return c
    raise ConfigError(
        f"dataset card templates not found (looked in {[str(c) for c in candidates]}); "
        "set CODEPREF_CARDS_DIR to the dataset_cards/ folder"
    )


@cache
def _template(name: str, folder: str) -> Template:
    return Template((Path(folder) / name).read_text(encoding="utf-8"))


@cache
def column_docs(folder: str | None = None) -> dict[str, str]:
    """``{column: meaning}`` from ``dataset_cards/columns.yaml`` (SPEC §3's table)."""
    return yaml.safe_load((Path(folder or cards_dir()) / "columns.yaml").read_text(encoding="utf-8"))


def kind_of(config: str, columns: list[str] | None = None) -> str:
    """Card kind from the config name (``pairs-pvf`` → pairs, ``sft-top25`` → sft), else from columns."""
    head = config.split("-")[0].split("_")[0].lower()
    if head in KINDS:
        return head
    cols = set(columns or ())
    if {"chosen", "rejected"} <= cols:
        return "pairs"
    if "label" in cols and "completion" in cols:
        return "kto"
    if "completion" in cols:
        return "sft"
    if "pairs" in cols:
        return "candidates"
    if "samples" in cols:
        return "samples"
    if "tests" in cols:
        return "problems"
    return "generic"


def size_category(rows: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "n>1B"


def scrub(value: Any) -> Any:
    """Drop secret-looking keys and token-looking strings: a card never carries credentials."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub("[redacted]", value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)


def split_card(text: str | None) -> tuple[dict[str, Any], str]:
    """``(metadata, body)`` of a README.md (empty metadata when there is none)."""
    if not text:
        return {}, ""
    card = DatasetCard(text, ignore_metadata_errors=True)
    return card.data.to_dict(), card.text


def add_config_metadata(meta: dict[str, Any], config: str, dd: DatasetDict, shard_sizes: dict[str, int]) -> None:
    """Write ``configs`` + ``dataset_info`` entries for ``config`` exactly as ``push_to_hub`` does."""
    from datasets.info import DatasetInfo
    from datasets.splits import SplitDict, SplitInfo

    data = DatasetCardData(**meta)
    MetadataConfigs(
        {config: {"data_files": [{"split": s, "path": f"{config}/{s}-*"} for s in dd]}}
    ).to_dataset_card_data(data)
    splits = SplitDict()
    for s, ds in dd.items():
        splits.add(SplitInfo(name=s, num_bytes=ds.data.nbytes, num_examples=len(ds)))
    features = next(iter(dd.values())).features
    info = DatasetInfo(
        config_name=config,
        features=features,
        splits=splits,
        download_size=sum(shard_sizes.values()),
        dataset_size=sum(ds.data.nbytes for ds in dd.values()),
    )
    DatasetInfosDict({config: info}).to_dataset_card_data(data)
    meta.clear()
    meta.update(data.to_dict())


def _type_str(feature: Any) -> str:
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {_type_str(v)}" for k, v in feature.items()) + "}"
    inner = getattr(feature, "feature", None)
    if inner is not None:
        return f"list[{_type_str(inner)}]"
    dtype = getattr(feature, "dtype", None)
    return str(dtype) if dtype else type(feature).__name__


def _features_by_config(meta: dict[str, Any]) -> dict[str, Features]:
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCardData(**meta))
    return {name: info.features for name, info in infos.items() if info.features is not None}


def _statistics_md(stats: dict[str, Any]) -> str:
    if not stats:
        return "_Statistics not recorded._"
    lines = ["| statistic | value |", "|---|---|"]
    for split, rows in stats.get("splits", {}).items():
        lines.append(f"| rows ({split}) | {rows:,} |")
    for key, label in (
        ("solutions_total", "samples"),
        ("solutions_passing", "passing samples (with a stable runtime where timed)"),
        ("pass_rate", "pass rate"),
        ("problems_solved", "problems with ≥1 passing sample"),
        ("tests_judged", "tests judged outside the sample's process"),
        ("tests_in_process", "tests run inside the sample's process (trust level `in-process`)"),
        ("pairs_total", "pairs"),
        ("desirable", "desirable (label true)"),
        ("undesirable", "undesirable (label false)"),
    ):
        if key in stats:
            v = stats[key]
            lines.append(f"| {label} | {v:.2%} |" if key == "pass_rate" else f"| {label} | {v:,} |")
    for kind, n in sorted(stats.get("pairs_per_kind", {}).items()):
        lines.append(f"| pairs of kind `{kind}` | {n:,} |")
    return "\n".join(lines)


def _columns_md(features: Features | None, columns: list[str], docs: dict[str, str]) -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for col in columns:
        typ = _type_str(features[col]) if features is not None and col in features else "?"
        meaning = docs.get(col, "not documented by codepref (added by the publisher)")
        lines.append(f"| `{col}` | `{typ}` | {meaning} |")
    return "\n".join(lines)


def _provenance_md(prov: dict[str, Any]) -> str:
    if not prov:
        return "_No provenance recorded._"
    keys = [k for k in _PROVENANCE_LABELS if k in prov] + [k for k in prov if k not in _PROVENANCE_LABELS]
    lines = []
    for k in keys:
        label, v = _PROVENANCE_LABELS.get(k, k.replace("_", " ").capitalize()), prov[k]
        if isinstance(v, (dict, list)):
            block = yaml.safe_dump(v, sort_keys=False, allow_unicode=True).rstrip()
            lines.append(
                f"- **{label}:**\n\n  ```yaml\n" + "\n".join("  " + x for x in block.splitlines()) + "\n  ```"
            )
        else:
            lines.append(f"- **{label}:** `{v}`")
    return "\n".join(lines)


def render_card(
    meta: dict[str, Any],
    *,
    repo: str,
    version: str,
    new_configs: dict[str, DatasetDict] | None = None,
    card: CardInfo | dict[str, Any] | None = None,
) -> str:
    """README.md for ``repo`` at ``version`` from its metadata (with ``configs``/``dataset_info``)."""
    folder = str(cards_dir())
    info = CardInfo.coerce(card)
    meta = dict(meta)
    block = dict(meta.get("codepref") or {})
    stats = dict(block.get("statistics") or {})
    kinds = dict(block.get("kinds") or {})
    for name, dd in (new_configs or {}).items():
        stats[name] = dataset_stats(dd)
        kinds[name] = info.kinds.get(name) or kind_of(name, next(iter(dd.values())).column_names)
    prov = scrub({**(block.get("provenance") or {}), **info.provenance})
    prov["codepref_version"] = __version__
    configs = list(MetadataConfigs.from_dataset_card_data(DatasetCardData(**meta)))
    features = _features_by_config(meta)
    rows = max([s.get("rows", 0) for s in stats.values()] or [0])

    meta["pretty_name"] = info.pretty_name or meta.get("pretty_name") or repo.split("/")[-1]
    meta["license"] = info.license or meta.get("license") or "other"
    meta["task_categories"] = sorted(set(meta.get("task_categories") or []) | {"text-generation"})
    meta["language"] = meta.get("language") or ["en"]
    meta["tags"] = list(dict.fromkeys([*(meta.get("tags") or BASE_TAGS), *info.tags]))
    meta["size_categories"] = [size_category(rows)]
    meta["codepref"] = {"version": version, "provenance": prov, "kinds": kinds, "statistics": stats}
    order = [
        "pretty_name",
        "license",
        "language",
        "task_categories",
        "tags",
        "size_categories",
        "configs",
        "dataset_info",
        "codepref",
    ]
    meta = {**{k: meta[k] for k in order if k in meta}, **{k: v for k, v in meta.items() if k not in order}}

    docs = column_docs(folder)
    sections, snippets = [], []
    for name in configs:
        kind = kinds.get(name) or kind_of(name, list(features.get(name) or []))
        cols = list(features[name]) if name in features else stats.get(name, {}).get("columns", [])
        body = _template(f"{kind}.md" if kind in KINDS else "generic.md", folder)
        sections.append(
            body.safe_substitute(
                config=name,
                statistics=_statistics_md(stats.get(name, {})),
                columns=_columns_md(features.get(name), cols, docs),
            ).strip()
        )
        var = re.sub(r"\W", "_", name)
        snippets.append(f'{var} = load_dataset("{repo}", "{name}", revision="{version}")')
    body = _template("base.md", folder).safe_substitute(
        title=meta["pretty_name"],
        description=info.description or block.get("description") or "Execution-verified code preference data.",
        version=version,
        config_list=", ".join(f"`{c}`" for c in configs) or "none",
        load_snippets="\n".join(snippets),
        config_sections="\n\n".join(sections),
        provenance=_provenance_md(prov),
        citations=(Path(folder) / "citations.bib").read_text(encoding="utf-8").strip(),
    )
    if info.description or block.get("description"):
        meta["codepref"]["description"] = info.description or block.get("description")
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body}"


def validate_card(text: str, *, online: bool = False) -> dict[str, Any]:
    """Check a card offline (YAML, required keys, configs/dataset_info parse, every column documented).

    ``online=True`` also asks the Hub's ``/api/validate-yaml`` (via ``RepoCard.validate``). Returns the
    metadata; raises :class:`DataError` listing every problem found.
    """
    problems: list[str] = []
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not m:
        raise DataError("card has no YAML front matter", source="README.md")
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        raise DataError(f"card YAML does not parse: {e}", source="README.md") from e
    if not isinstance(meta, dict):
        raise DataError("card YAML is not a mapping", source="README.md")
    problems += [f"missing metadata key {k!r}" for k in REQUIRED_KEYS if not meta.get(k)]
    valid_sizes = {name for _, name in SIZE_CATEGORIES} | {"n>1B"}
    problems += [f"invalid size category {s!r}" for s in meta.get("size_categories") or [] if s not in valid_sizes]
    try:
        data = DatasetCardData(**meta)
        configs = MetadataConfigs.from_dataset_card_data(data)
        features = _features_by_config(meta)
    except Exception as e:  # noqa: BLE001 - any parse failure is a card problem
        raise DataError(f"card metadata does not parse: {e}", source="README.md") from e
    body = text[m.end() :]
    for name in configs:
        if f'"{name}"' not in body:
            problems.append(f"config {name!r} has no load_dataset snippet")
        for col in features.get(name, {}):
            if f"`{col}`" not in body:
                problems.append(f"config {name!r}: column {col!r} is not documented")
    if _SECRET_VALUE.search(text):
        problems.append("card contains something that looks like a Hub token")
    if problems:
        raise DataError("invalid dataset card: " + "; ".join(problems), source="README.md")
    if online:
        DatasetCard(text).validate(repo_type="dataset")
    return meta
