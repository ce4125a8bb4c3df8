"""How a dataset was made, carried inside the dataset itself.

Each stage records its config and what it observed (model identity, chat mode, sandbox
isolation level, timing mode and CPU, …) under its own name. The record lives in the
dataset's ``info.description`` as one JSON document, so it survives ``save_to_disk``,
``map`` and resumed runs, and the dataset card renders it (SPEC §4.7).
"""

from __future__ import annotations

import copy
import json
import platform
from typing import Any

from datasets import Dataset

from . import __version__

_MARK = "codepref-provenance:"


def get_provenance(ds: Dataset) -> dict[str, Any]:
    """The provenance record of ``ds`` (``{}`` if it has none)."""
    text = ds.info.description or ""
    idx = text.rfind(_MARK)
    if idx < 0:
        return {}
    try:
        return json.loads(text[idx + len(_MARK) :].strip().split("\n", 1)[0])
    except json.JSONDecodeError:
        return {}


def with_provenance(ds: Dataset, stage: str, record: dict[str, Any], base: dict[str, Any] | None = None) -> Dataset:
    """A copy-on-write view of ``ds`` whose provenance has ``record`` under ``stage``.

    ``base`` (default: ``ds``'s own provenance) carries earlier stages' records over, e.g.
    from a paired dataset to the flat export made from it.
    """
    prov = copy.deepcopy(base) if base is not None else get_provenance(ds)
    prov.setdefault("codepref_version", __version__)
    prov.setdefault("python", platform.python_version())
    prov[stage] = json.loads(json.dumps(record, default=str))
    out = copy.copy(ds)
    out._info = copy.deepcopy(ds.info)
    out._info.description = _MARK + json.dumps(prov, sort_keys=True)
    return out
