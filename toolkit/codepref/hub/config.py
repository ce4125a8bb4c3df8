"""CLI/YAML configs of the hub stage (``codepref publish`` / ``pull`` / ``versions`` / ``mirror``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError
from .store import check_config_name, check_version

STORE_HELP = (
    "where datasets live: 'local' (embedded git store under $CODEPREF_HUB), 'hub' (Hugging Face Hub), "
    "or a local store root folder; default: $CODEPREF_STORE, else 'local'"
)


@dataclass
class PublishConfig:
    """Publish one config of a dataset as a new, immutable version.

    ``config_name`` is named so because the CLI's ``--config`` reads a YAML file.
    """

    config_name: str = field(metadata={"help": "dataset config (subset) name, e.g. samples, pairs-pvf, sft-top25"})
    version: str = field(metadata={"help": "version tag to create, e.g. v1 or v1.1 (refused if it exists)"})
    private: bool = field(default=False, metadata={"help": "create the Hub repository as private"})
    message: str | None = field(default=None, metadata={"help": "commit message (default: 'Publish <version>')"})
    store: str | None = field(default=None, metadata={"help": STORE_HELP})
    card: str | None = field(
        default=None,
        metadata={
            "help": "YAML/JSON file with card info: pretty_name, description, license, tags, provenance "
            "(model, sampling, sandbox, timing, source dataset, pipeline config)"
        },
    )

    def __post_init__(self) -> None:
        check_config_name(self.config_name)
        check_version(self.version)


@dataclass
class PullConfig:
    """Pull one config of a dataset at a revision (a version tag, a branch or a commit)."""

    config_name: str = field(metadata={"help": "dataset config (subset) name to load"})
    revision: str = field(default="main", metadata={"help": "version tag, branch or commit sha to load"})
    split: str | None = field(default=None, metadata={"help": "load only this split (default: all splits)"})
    store: str | None = field(default=None, metadata={"help": STORE_HELP})

    def __post_init__(self) -> None:
        check_config_name(self.config_name)
        if not self.revision:
            raise ConfigError("revision must not be empty")


@dataclass
class MirrorConfig:
    """Copy versions between the local store and the Hub (same files, same tags)."""

    direction: Literal["to-hub", "from-hub"] = field(
        default="to-hub", metadata={"help": "to-hub: local store → Hub; from-hub: Hub → local store"}
    )
    version: str | None = field(
        default=None, metadata={"help": "version to mirror (default: every version the target lacks)"}
    )
    target_repo: str | None = field(default=None, metadata={"help": "repo id at the target (default: the same)"})
    private: bool = field(default=False, metadata={"help": "create the Hub repository as private (to-hub)"})
    local_root: str | None = field(default=None, metadata={"help": "local store root (default: $CODEPREF_HUB)"})

    def __post_init__(self) -> None:
        if self.direction not in ("to-hub", "from-hub"):
            raise ConfigError(f"direction must be 'to-hub' or 'from-hub', got {self.direction!r}")
        if self.version is not None:
            check_version(self.version)


@dataclass
class PublishStageConfig:
    """The pipeline's publish stage: stage outputs become configs of one new version."""

    repo: str = field(metadata={"help": "dataset repo id, e.g. my-org/humaneval-prefs"})
    version: str = field(metadata={"help": "version tag to create, e.g. v1 (refused if it exists)"})
    configs: dict[str, str] = field(metadata={"help": "dataset config name -> pipeline stage whose output it is"})
    private: bool = field(default=False, metadata={"help": "create the Hub repository as private"})
    message: str | None = field(default=None, metadata={"help": "commit message"})
    store: str | None = field(default=None, metadata={"help": STORE_HELP})
    card: str | dict | None = field(default=None, metadata={"help": "card info: a YAML/JSON file or a mapping"})

    def __post_init__(self) -> None:
        check_version(self.version)
        if not self.configs:
            raise ConfigError("publish needs at least one entry in configs")
        for name in self.configs:
            check_config_name(name)
