"""The CLI's rich progress bars (library code reports through ``codepref.progress``)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichReporter:
    """Shows every ``codepref.progress.task`` as a live bar: done/total, elapsed, ETA."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._open = 0

    def start(self, desc: str, total: int | None, completed: int) -> TaskID:
        if self._open == 0:
            self.progress.start()
        self._open += 1
        return self.progress.add_task(desc, total=total, completed=completed)

    def advance(self, handle: TaskID, n: int) -> None:
        self.progress.advance(handle, n)

    def finish(self, handle: TaskID) -> None:
        self._open -= 1
        if self._open == 0:
            self.progress.stop()
