"""The small exception hierarchy of codepref.

Every error a user can cause names what was wrong: the dataset, the row (``task_id``)
and the field, so a bad row in a 10,000-problem run is found without a debugger.
"""

from __future__ import annotations


class CodeprefError(Exception):
    """Base class of every error raised on purpose by codepref."""


class ConfigError(CodeprefError, ValueError):
    """A stage configuration is invalid (reported before any work starts)."""


class DataError(CodeprefError, ValueError):
    """A dataset row is malformed; the message names the row and the field."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        field: str | None = None,
        row: int | None = None,
        source: str | None = None,
    ) -> None:
        self.task_id, self.field, self.row, self.source = task_id, field, row, source
        where = []
        if source is not None:
            where.append(f"dataset {source!r}")
        if row is not None:
            where.append(f"row {row}")
        if task_id is not None:
            where.append(f"task_id {task_id!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class BackendError(CodeprefError, RuntimeError):
    """A generation, execution or storage backend is unavailable or failed."""
