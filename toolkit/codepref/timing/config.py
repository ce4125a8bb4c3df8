"""Settings of the timing stage (``codepref time``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..execution.config import ExecutionConfig

MODES = ("count", "code-optimise", "interleaved")


@dataclass
class TimingConfig(ExecutionConfig):
    """Timing mode and its parameters, plus the sandbox limits of ExecutionConfig (applied per run).

    Every mode is made of *timed runs*: a run is a fresh sample process that loads the program once and
    answers every timed test (the whole check program), each answer checked by the judge; its CPU time is
    read by the sandbox server from the kernel, its instruction count (mode ``count``) from valgrind's
    own totals for that process. Nothing from an earlier run, a warm-up or a test is in a run's process.
    """

    mode: str = field(
        default="count",
        metadata={
            "help": "count (default: exact instruction counts of the program's work in a run), code-optimise "
            "(the paper's Algorithm 1 on CPU time: batches of cold runs until CoV <= threshold, in several "
            "repetitions; µs-scale programs are often too noisy for it), interleaved (candidates of a problem "
            "run round-robin; CPU time + ratio to the round)"
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
    repeats: int = field(
        default=2,
        metadata={
            "help": "count: counted runs per solution; cost = their median, runtime_cov = their CoV (the "
            "measurement's resolution: 0.0 when the runs agree exactly)"
        },
    )
    count_seconds: float = field(
        default=60.0,
        metadata={"help": "count: wall seconds per test of a counted run (valgrind runs programs ~50x slower)"},
    )
    calibrate: bool = field(
        default=True,
        metadata={"help": "count: estimate runtime_ns = cost x ns-per-instruction of a calibration workload"},
    )
    # -- code-optimise mode
    batch_size: int = field(default=50, metadata={"help": "code-optimise: runs per batch (paper: 50)"})
    cov_threshold: float = field(
        default=0.1, metadata={"help": "stable when CoV <= this (code-optimise per batch; others overall)"}
    )
    max_batches: int = field(default=1000, metadata={"help": "code-optimise: batches before giving up (1000)"})
    processes: int = field(
        default=5,
        metadata={"help": "code-optimise: independent repetitions of the procedure per solution, averaged (5)"},
    )
    # -- interleaved mode
    rounds: int = field(default=30, metadata={"help": "interleaved: measured round-robin rounds"})
    warmup_rounds: int = field(default=2, metadata={"help": "interleaved: unrecorded rounds first"})
    reference: str = field(
        default="gmean",
        metadata={
            "help": "interleaved: runtime_ratio relative to the round's geometric mean over candidates (gmean), "
            "or to the first passing candidate (first)"
        },
    )
    max_seconds: float | None = field(
        default=None,
        metadata={
            "help": "code-optimise: wall-clock budget per solution (per repetition); over it → unstable (failed). "
            "None (default) = no budget, as Algorithm 1 (max_batches bounds it)"
        },
    )
    shard_size: int = field(default=16, metadata={"help": "problems per resumable shard"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.reference not in ("gmean", "first"):
            raise ConfigError("reference must be 'gmean' or 'first'")
        for name in ("repeats", "batch_size", "max_batches", "processes", "rounds", "shard_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.warmup_rounds < 0:
            raise ConfigError("warmup_rounds must be >= 0")
        if (
            self.cov_threshold <= 0
            or (self.max_seconds is not None and self.max_seconds <= 0)
            or self.count_seconds <= 0
        ):
            raise ConfigError("cov_threshold, max_seconds and count_seconds must be positive")
