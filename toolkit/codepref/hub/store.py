"""What both storage backends share: result types, the backend interface, name and shard helpers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from datasets import Dataset, DatasetDict

from ..errors import ConfigError

_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_VERSION = re.compile(r"^[A-Za-z0-9][\w.+-]*$")
_CONFIG = re.compile(r"^[A-Za-z0-9][\w.-]*$")
DEFAULT_MAX_SHARD_BYTES = 500 * 2**20  # push_to_hub's default max_shard_size ("500MB")


@dataclass(frozen=True)
class PublishedVersion:
    """One published, immutable version: ``load_dataset(repo, config, revision=version)`` pins it."""

    repo: str
    version: str
    commit: str
    store: str
    configs: tuple[str, ...]
    location: str

    def load_snippet(self, config: str | None = None) -> str:
        cfg = config or (self.configs[0] if self.configs else "default")
        return f'load_dataset("{self.repo}", "{cfg}", revision="{self.version}")'


@dataclass(frozen=True)
class VersionInfo:
    """A version (git tag) of a dataset repository."""

    version: str
    commit: str
    date: str | None = None
    message: str | None = None


class Store(Protocol):
    """A storage backend: the embedded local git store or the Hugging Face Hub."""

    name: str

    def publish(
        self,
        configs: dict[str, DatasetDict],
        repo: str,
        *,
        version: str,
        private: bool,
        message: str,
        card: Any,
    ) -> PublishedVersion: ...

    def pull(self, repo: str, *, config: str, revision: str, split: str | None) -> Dataset | DatasetDict: ...

    def versions(self, repo: str) -> list[VersionInfo]: ...

    def snapshot(self, repo: str, revision: str) -> Path:
        """A folder holding every file of ``repo`` at ``revision`` (read-only by convention)."""
        ...

    def import_snapshot(
        self, repo: str, folder: Path, *, version: str, private: bool, message: str
    ) -> PublishedVersion:
        """Make ``folder`` the new tree of ``repo`` and tag it ``version`` (for mirroring)."""
        ...


def check_repo(repo: str) -> str:
    if not _REPO.match(repo) or ".." in repo:
        raise ConfigError(f"invalid dataset repo id {repo!r} (expected 'name' or 'namespace/name')")
    return repo


def check_version(version: str) -> str:
    if (
        not isinstance(version, str)
        or not _VERSION.match(version)
        or version in ("main", "HEAD")
        or re.fullmatch(r"[0-9a-f]{40}", version)
        or version.endswith((".lock", "."))
    ):
        raise ConfigError(f"invalid version {version!r}: use a tag name such as 'v1' or 'v1.1'")
    return version


def check_config_name(config: str) -> str:
    if not isinstance(config, str) or not _CONFIG.match(config):
        raise ConfigError(f"invalid config name {config!r} (letters, digits, '-', '_', '.')")
    return config


def version_key(version: str) -> tuple:
    """Natural order: v2 < v10, v1 < v1.1."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version) if p)


def num_shards(ds: Dataset, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> int:
    """Same rule as ``push_to_hub``: enough shards that each stays under ``max_shard_bytes``."""
    return max(1, math.ceil(ds.data.nbytes / max_shard_bytes))


def shard_paths(config: str, split: str, n: int) -> list[str]:
    """The Hub's file layout: ``<config>/<split>-00000-of-0000N.parquet``."""
    return [f"{config}/{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
