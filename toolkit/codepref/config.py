"""Helpers shared by every stage config dataclass.

A stage config is a plain dataclass whose fields carry ``metadata={"help": ...}``; the same
class drives the Python API, the CLI flags, ``--config file.yaml`` and pipeline files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able data, for provenance (dataset cards) and fingerprints."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"expected a config dataclass, got {type(cfg).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str, sort_keys=True))


def config_fingerprint(*parts: Any) -> str:
    """A short stable hash of configs and other JSON-able parts (same inputs → same string)."""
    payload = [config_to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    blob = json.dumps(payload, default=str, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def field_help(cls: type) -> dict[str, str]:
    """``{field name: help text}`` from the dataclass fields' metadata."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
