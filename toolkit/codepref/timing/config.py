"""Settings of the timing stage (``codepref time``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..execution.config import ExecutionConfig

MODES = ("count", "code-optimise", "interleaved")


@dataclass
class TimingConfig(ExecutionConfig):
    """Timing mode and its parameters, plus the sandbox limits of ExecutionConfig (applied per child)."""

    mode: str = field(
        default="count",
        metadata={
            "help": "count (default: deterministic callgrind instruction counts, many solutions per valgrind "
            "run), code-optimise (the paper's CPU-time Algorithm 1, 5 processes), interleaved (candidates of "
            "a problem timed round-robin, CPU time + ratio to a reference)"
        },
    )
    tests: str = field(
        default="passed",
        metadata={
            "help": "which tests a sample is timed on: passed (every ground-truth test it passes), credible "
            "(CodeDPO: the gen_tests passed by the argmax-score sample, via score + gen_exec_matrix), or the "
            "name of a column holding list[int] indices into tests"
        },
    )
    # -- count mode
    warmup: int = field(
        default=8,
        metadata={"help": "count: at most this many uncounted warm-up runs (CPython 3.11 quickens code after 8)"},
    )
    warmup_seconds: float = field(
        default=0.05,
        metadata={
            "help": "count: warm-up runs stop early, after at least one, once they have used this much CPU "
            "time (a heavy program is specialised during its first run; µs-scale programs get all of them)"
        },
    )
    repeats: int = field(
        default=1,
        metadata={
            "help": "count: counted runs per solution; cost = their median, runtime_cov = their CoV (0.0 for one "
            "run: a count is deterministic; use >= 2 to see how much it still drifts from run to run)"
        },
    )
    sessions: int | None = field(
        default=None, metadata={"help": "count: parallel valgrind sessions; None = number of CPU cores"}
    )
    calibrate: bool = field(
        default=True,
        metadata={"help": "count: estimate runtime_ns = cost x ns-per-instruction of a calibration run"},
    )
    # -- code-optimise mode
    batch_size: int = field(default=50, metadata={"help": "code-optimise: runs per batch (paper: 50)"})
    cov_threshold: float = field(
        default=0.1, metadata={"help": "stable when CoV <= this (code-optimise per batch; others overall)"}
    )
    max_batches: int = field(default=1000, metadata={"help": "code-optimise: batches before giving up (1000)"})
    processes: int = field(
        default=5, metadata={"help": "code-optimise: separate processes per solution, averaged (5)"}
    )
    # -- interleaved mode
    rounds: int = field(default=30, metadata={"help": "interleaved: measured round-robin rounds"})
    warmup_rounds: int = field(default=2, metadata={"help": "interleaved: unrecorded rounds first (>= 1)"})
    turn_ms: float = field(
        default=2.0, metadata={"help": "interleaved: each turn repeats the program until it lasts >= this CPU time"}
    )
    reference: str = field(
        default="gmean",
        metadata={
            "help": "interleaved: runtime_ratio relative to the round's geometric mean over candidates (gmean), "
            "or to the first passing candidate (first)"
        },
    )
    max_seconds: float = field(
        default=120.0,
        metadata={"help": "wall-clock budget per solution (per process); over it → unstable (null runtime)"},
    )
    shard_size: int = field(default=16, metadata={"help": "problems per resumable shard"})

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.reference not in ("gmean", "first"):
            raise ConfigError("reference must be 'gmean' or 'first'")
        for name in ("repeats", "batch_size", "max_batches", "processes", "rounds", "shard_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.warmup < 0 or self.warmup_rounds < 0 or self.warmup_seconds < 0:
            raise ConfigError("warm-up counts must be >= 0")
        if self.cov_threshold <= 0 or self.max_seconds <= 0:
            raise ConfigError("cov_threshold and max_seconds must be positive")
        if self.sessions is not None and self.sessions < 1:
            raise ConfigError("sessions must be >= 1")
