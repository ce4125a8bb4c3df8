"""hub: publish and pull versioned datasets (SPEC §4.7), one API over two backends.

- :class:`~codepref.hub.local_store.LocalStore` — the embedded store (default): one git repo per
  dataset under ``$CODEPREF_HUB`` with the Hub's exact file layout, tags as versions;
- :class:`~codepref.hub.hf_hub.HubStore` — the Hugging Face Hub (``store="hub"``,
  ``CODEPREF_STORE=hub`` or an ``hf://`` repo).

A version is a git tag and immutable: publishing an existing one is refused. Each publish
re-renders the dataset card from ``dataset_cards/``. ``pull(repo, config=..., revision="v1")``
is the local twin of ``load_dataset(repo, config, revision="v1")``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset, DatasetDict

from ..errors import ConfigError, DataError
from ..provenance import get_provenance
from .cards import CardInfo, render_card, validate_card
from .config import MirrorConfig, PublishConfig, PublishStageConfig, PullConfig
from .hf_hub import HubStore
from .local_store import LocalStore
from .store import PublishedVersion, Store, VersionInfo, check_config_name, check_repo, check_version

__all__ = [
    "CardInfo",
    "HubStore",
    "LocalStore",
    "MirrorConfig",
    "PublishConfig",
    "PublishStageConfig",
    "PublishedVersion",
    "PullConfig",
    "Store",
    "VersionInfo",
    "get_store",
    "mirror",
    "mirror_from_hub",
    "mirror_to_hub",
    "publish",
    "publish_with_config",
    "pull",
    "pull_with_config",
    "render_card",
    "validate_card",
    "versions",
]

logger = logging.getLogger(__name__)
DataLike = Dataset | DatasetDict | dict[str, Any]


def _strip_hf(repo: str) -> tuple[str, bool]:
    for prefix in ("hf://datasets/", "hf://"):
        if repo.startswith(prefix):
            return repo[len(prefix) :], True
    return repo, False


def get_store(store: str | Store | None = None, repo: str | None = None) -> Store:
    """The backend for ``store``: an instance, 'local', 'hub', a local root folder, or the default.

    The default is ``$CODEPREF_STORE`` ('local' or 'hub'), else 'local'; an ``hf://`` repo means the Hub.
    """
    if store is not None and not isinstance(store, str):
        return store
    if store is None and repo is not None and _strip_hf(repo)[1]:
        return HubStore()
    name = store or os.environ.get("CODEPREF_STORE") or "local"
    if name == "local":
        return LocalStore()
    if name == "hub":
        return HubStore()
    if name.startswith("local:"):
        return LocalStore(name[len("local:") :])
    if name.startswith(("/", ".", "~")):
        return LocalStore(name)
    raise ConfigError(f"unknown store {name!r}: use 'local', 'hub' or a local store folder")


def _split_name(ds: Dataset) -> str:
    return str(ds.split) if ds.split else "train"


def _as_dict(data: Dataset | DatasetDict | dict[str, Dataset]) -> DatasetDict:
    if isinstance(data, Dataset):
        return DatasetDict({_split_name(data): data})
    dd = data if isinstance(data, DatasetDict) else DatasetDict(data)
    for split, ds in dd.items():
        if not isinstance(ds, Dataset):
            raise ConfigError(f"split {split!r} is a {type(ds).__name__}, expected a Dataset")
    return dd


def normalize_configs(data: DataLike, config: str | None) -> dict[str, DatasetDict]:
    """``{config: DatasetDict}`` from a Dataset, a DatasetDict (splits) or ``{config: Dataset|DatasetDict}``."""
    if isinstance(data, (Dataset, DatasetDict)) or config is not None:
        if config is None:
            raise ConfigError("config= is required when publishing a single Dataset or DatasetDict")
        configs = {config: _as_dict(data)}
    elif isinstance(data, dict):
        configs = {name: _as_dict(value) for name, value in data.items()}
    else:
        raise ConfigError(f"cannot publish a {type(data).__name__}: pass a Dataset, DatasetDict or dict of them")
    if not configs:
        raise ConfigError("nothing to publish")
    out = {}
    for name, dd in configs.items():
        check_config_name(name)
        if not dd:
            raise DataError("config has no splits", source=name)
        out[name] = DatasetDict({s: ds.flatten_indices() if ds._indices is not None else ds for s, ds in dd.items()})
    return out


def publish(
    dataset_or_dict: DataLike,
    repo: str,
    *,
    config: str | None = None,
    version: str,
    private: bool = False,
    message: str | None = None,
    card: CardInfo | dict[str, Any] | None = None,
    store: str | Store | None = None,
) -> PublishedVersion:
    """Publish ``config`` (or every config of a ``{name: data}`` dict) of ``repo`` as a new ``version``.

    Configs published earlier stay in the repository (a version is a snapshot of all of them);
    re-publishing an existing version raises :class:`~codepref.errors.CodeprefError`.
    """
    backend = get_store(store, repo)
    repo = check_repo(_strip_hf(repo)[0])
    check_version(version)
    configs = normalize_configs(dataset_or_dict, config)
    empty = [f"{name}/{split}" for name, dd in configs.items() for split, ds in dd.items() if len(ds) == 0]
    if empty:  # load_dataset cannot read a config whose parquet files hold no rows
        raise DataError(
            f"nothing to publish in {', '.join(empty)}: it has no rows (an empty config cannot be "
            "loaded with load_dataset)",
            field="config",
        )
    message = message or f"Publish {version}: {', '.join(configs)}"
    info = CardInfo.coerce(card)
    recorded: dict[str, Any] = {}  # what the pipeline stages recorded inside the data (codepref.provenance)
    for dd in configs.values():
        for ds in dd.values():
            recorded.update(get_provenance(ds))
    if recorded:
        info = dataclasses.replace(info, provenance={**recorded, **info.provenance})
    return backend.publish(configs, repo, version=version, private=private, message=message, card=info)


def pull(
    repo: str, *, config: str, revision: str, split: str | None = None, store: str | Store | None = None
) -> Dataset | DatasetDict:
    """Load ``config`` of ``repo`` at ``revision`` (a version tag, a branch or a commit sha)."""
    backend = get_store(store, repo)
    return backend.pull(
        check_repo(_strip_hf(repo)[0]), config=check_config_name(config), revision=revision, split=split
    )


def versions(repo: str, store: str | Store | None = None) -> list[VersionInfo]:
    """Published versions of ``repo``, oldest first in natural order (v2 < v10)."""
    backend = get_store(store, repo)
    return backend.versions(check_repo(_strip_hf(repo)[0]))


def mirror(
    src: Store,
    dst: Store,
    repo: str,
    *,
    version: str | None = None,
    target_repo: str | None = None,
    private: bool = False,
) -> list[PublishedVersion]:
    """Copy ``version`` (default: every version ``dst`` lacks) of ``repo`` from ``src`` to ``dst``, same tag."""
    repo = check_repo(_strip_hf(repo)[0])
    target = check_repo(_strip_hf(target_repo)[0]) if target_repo else repo
    have = {v.version for v in dst.versions(target)}
    source_versions = [v.version for v in src.versions(repo)]
    if version is not None:
        if version not in source_versions:
            raise DataError(f"no version {version!r} in the {src.name} store", source=repo)
        todo = [version]
    else:
        todo = [v for v in source_versions if v not in have]
    done = []
    for v in todo:
        folder = src.snapshot(repo, v)
        done.append(
            dst.import_snapshot(
                target, folder, version=v, private=private, message=f"Mirror {repo}@{v} from the {src.name} store"
            )
        )
    return done


def mirror_to_hub(
    repo: str,
    *,
    version: str | None = None,
    hub_repo: str | None = None,
    private: bool = False,
    local: LocalStore | str | None = None,
    hub: HubStore | None = None,
) -> list[PublishedVersion]:
    """Push local-store versions of ``repo`` to the Hub, with identical files and tags."""
    local_store = local if isinstance(local, LocalStore) else LocalStore(local)
    return mirror(local_store, hub or HubStore(), repo, version=version, target_repo=hub_repo, private=private)


def mirror_from_hub(
    repo: str,
    *,
    version: str | None = None,
    local_repo: str | None = None,
    local: LocalStore | str | None = None,
    hub: HubStore | None = None,
) -> list[PublishedVersion]:
    """Copy Hub versions of ``repo`` into the local store, with identical files and tags."""
    local_store = local if isinstance(local, LocalStore) else LocalStore(local)
    return mirror(hub or HubStore(), local_store, repo, version=version, target_repo=local_repo)


def load_card_file(path: str | os.PathLike | None) -> CardInfo:
    """Card info from a YAML or JSON file (unknown keys become provenance)."""
    if path is None:
        return CardInfo()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"card file {str(p)!r} not found")
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"card file {str(p)!r} must hold a mapping")
    return CardInfo.coerce(data)


def publish_with_config(data: DataLike, repo: str, cfg: PublishConfig) -> PublishedVersion:
    """What ``codepref publish DATASET REPO`` calls."""
    return publish(
        data,
        repo,
        config=cfg.config_name,
        version=cfg.version,
        private=cfg.private,
        message=cfg.message,
        card=load_card_file(cfg.card),
        store=cfg.store,
    )


def pull_with_config(repo: str, cfg: PullConfig) -> Dataset | DatasetDict:
    """What ``codepref pull REPO OUT`` calls."""
    return pull(repo, config=cfg.config_name, revision=cfg.revision, split=cfg.split, store=cfg.store)


def mirror_with_config(repo: str, cfg: MirrorConfig) -> list[PublishedVersion]:
    """What ``codepref mirror REPO`` calls."""
    if cfg.direction == "to-hub":
        return mirror_to_hub(
            repo, version=cfg.version, hub_repo=cfg.target_repo, private=cfg.private, local=cfg.local_root
        )
    return mirror_from_hub(repo, version=cfg.version, local_repo=cfg.target_repo, local=cfg.local_root)
