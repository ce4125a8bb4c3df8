"""Helpers shared by every stage config dataclass.

A stage config is a plain dataclass whose fields carry ``metadata={"help": ...}``; the same
class drives the Python API, the CLI flags, ``--config file.yaml`` and pipeline files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
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


def nested_config_class(tp: Any) -> type | None:
    """The dataclass a field holds (``SampleConfig`` or ``SampleConfig | None``), else None."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def option_help(cls: type, prefix: str = "") -> dict[str, str]:
    """``{option: help}`` for every field, nested configs' fields as ``outer.inner``."""
    out: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out[prefix + f.name] = f.metadata.get("help", "")
        inner = nested_config_class(hints.get(f.name))
        if inner is not None:
            out.update(option_help(inner, prefix + f.name + "."))
    return out


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build ``cls`` from parsed options, nested configs included (their own ``__post_init__`` validates)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key, value in data.items():
        if key not in names:
            continue
        inner = nested_config_class(hints.get(key))
        if inner is not None and isinstance(value, dict):
            value = config_from_dict(inner, value)
        kwargs[key] = value
    return cls(**kwargs)
