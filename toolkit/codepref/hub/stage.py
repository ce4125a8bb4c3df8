"""The pipeline's ``publish`` stage: several stage outputs published as configs of one new version."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from . import load_card_file, publish
from .config import PublishStageConfig

logger = logging.getLogger(__name__)


def publish_stage(cfg: PublishStageConfig, *, stage_outputs: dict[str, Path]) -> dict[str, Any]:
    """The pipeline's ``publish`` stage: several stage outputs as configs of one new version."""
    from datasets import load_from_disk

    missing = sorted(set(cfg.configs.values()) - set(stage_outputs))
    if missing:
        raise ConfigError(f"publish: configs refer to unknown stages {missing} (stages: {sorted(stage_outputs)})")
    data = {name: load_from_disk(str(stage_outputs[stage])) for name, stage in cfg.configs.items()}
    skipped = sorted(name for name, ds in data.items() if len(ds) == 0)
    if skipped:
        logger.warning("publish: skipping empty configs %s (no rows to publish)", skipped)
        data = {name: ds for name, ds in data.items() if len(ds)}
    if not data:
        raise DataError(f"publish: every config is empty ({', '.join(skipped)}); nothing to publish", field="configs")
    card = load_card_file(cfg.card) if isinstance(cfg.card, str) else cfg.card
    pv = publish(
        data, cfg.repo, version=cfg.version, private=cfg.private, message=cfg.message, card=card, store=cfg.store
    )
    return {
        "repo": cfg.repo,
        "version": pv.version,
        "commit": pv.commit,
        "configs": list(data),
        "skipped_empty": skipped,
        "load": pv.load_snippet(),
    }
