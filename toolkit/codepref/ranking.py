"""Ranking samples (and tests) from a samples × tests execution matrix.

Every method takes a matrix ``R`` of shape (samples, tests): either outcome codes (int,
0 = pass, SPEC §3) or booleans (True = pass). All functions are vectorised numpy and
deterministic; where a method has ties, they are broken by a seeded generator.

- :func:`pass_counts` — score(c) = Σ_t R[c, t].
- :func:`self_validation` — CodeDPO §3.2, PageRank-style mutual validation of code and tests.
- :func:`minimax` — DSTC §3, Component I (minimax selection).
- :func:`dual_agreement` — CodeT (Chen et al., 2022), clusters by passed-test set.

:func:`rank` is the dataset transform adding ``score`` / ``test_score``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from datasets import Dataset

from .config import config_fingerprint, config_to_dict
from .errors import ConfigError, DataError
from .provenance import get_provenance, with_provenance

PASS = 0
METHODS = ("pass_count", "self_validation", "dual_agreement", "minimax")
TEST_SOURCES = ("ground_truth", "generated", "both")


def pass_matrix(matrix: np.ndarray | Sequence[Sequence[int]] | Sequence[Sequence[bool]]) -> np.ndarray:
    """``R`` as a bool array (samples × tests): outcome code 0, or True, means pass."""
    arr = np.asarray(matrix)
    if arr.size == 0:
        rows = len(matrix) if not isinstance(matrix, np.ndarray) else arr.shape[0]
        return np.zeros((rows, 0 if arr.ndim < 2 else arr.shape[1]), dtype=bool)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-d samples × tests matrix, got shape {arr.shape}")
    return arr if arr.dtype == bool else arr == PASS


def pass_counts(matrix) -> np.ndarray:
    """Number of tests each sample passes."""
    return pass_matrix(matrix).sum(axis=1)


def self_validation(matrix, damping: float = 0.85, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """CodeDPO self-validation scores ``(code_scores, test_scores)`` (CodeDPO §3.2, Eq. 1–2).

    All scores start at 1. Each iteration first updates every test,
    ``s_t ← (1−d)·s_t + d·Σ_c s_c·R[c,t]``, then every code with the *updated* test scores,
    ``s_c ← (1−d)·s_c + d·Σ_t s_t·R[c,t]`` (the order of the paper's worked example: with
    d=0.5, T=2 a code passing both of two tests scores 1 → 1.75 → 2.6875).
    """
    if not 0.0 <= damping <= 1.0:
        raise ValueError(f"damping must be in [0, 1], got {damping}")
    r = pass_matrix(matrix).astype(np.float64)
    codes = np.ones(r.shape[0])
    tests = np.ones(r.shape[1])
    for _ in range(iterations):
        tests = (1.0 - damping) * tests + damping * (r.T @ codes)
        codes = (1.0 - damping) * codes + damping * (r @ tests)
    return codes, tests


def dual_agreement(matrix) -> np.ndarray:
    """CodeT dual agreement: samples passing the same test set form a cluster; each sample's
    score is |cluster| × |tests that set holds| (0 for samples passing nothing)."""
    r = pass_matrix(matrix)
    if r.shape[0] == 0:
        return np.zeros(0)
    _, inverse, sizes = np.unique(r, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    return (sizes[inverse] * r.sum(axis=1)).astype(np.float64)


@dataclass(frozen=True)
class MinimaxChoice:
    """DSTC's selection; ``None`` where the constrained optimisation is infeasible."""

    chosen_code: int | None
    chosen_test: int | None
    rejected_test: int | None
    rejected_code: int | None


def _pick(candidates: np.ndarray, values: np.ndarray, rng: np.random.Generator, best: str) -> int | None:
    """Index (into the full axis) of the best value among ``candidates``; seeded tie-break."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        return None
    vals = values[idx]
    target = vals.max() if best == "max" else vals.min()
    ties = idx[vals == target]
    return int(ties[0] if ties.size == 1 else rng.choice(ties))


def minimax(matrix, seed: int = 0) -> MinimaxChoice:
    """DSTC minimax selection (DSTC §3, Eq. 3.1–3.4).

    chosen code c* = argmax_c Σ_t R[c,t] (infeasible when no code passes any test);
    chosen test t* = argmin_t Σ_c R[c,t] s.t. R[c*,t] = 1 (hardest test c* passes);
    rejected test t' = argmax_t Σ_c R[c,t] s.t. some code fails t (easiest discriminating test);
    rejected code c' = argmin_c Σ_t R[c,t] s.t. R[c,t'] = 0.
    """
    r = pass_matrix(matrix)
    rng = np.random.default_rng(seed)
    n_codes, n_tests = r.shape
    row, col = r.sum(axis=1), r.sum(axis=0)
    chosen_code = chosen_test = rejected_test = rejected_code = None
    if n_codes and n_tests and row.max() > 0:
        chosen_code = _pick(np.ones(n_codes, bool), row, rng, "max")
        chosen_test = _pick(r[chosen_code], col, rng, "min")
    if n_codes and n_tests:
        rejected_test = _pick(col < n_codes, col, rng, "max")
        if rejected_test is not None:
            rejected_code = _pick(~r[:, rejected_test], row, rng, "min")
    return MinimaxChoice(chosen_code, chosen_test, rejected_test, rejected_code)


def row_seed(seed: int, task_id: str) -> int:
    """A per-problem seed: stable across runs, shards and machines."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{task_id}".encode()).digest()[:8], "little")


@dataclass
class RankConfig:
    """How to score samples (and tests) of every problem."""

    method: Literal["pass_count", "self_validation", "dual_agreement", "minimax"] = field(
        default="pass_count",
        metadata={"help": "pass_count | self_validation (CodeDPO) | dual_agreement (CodeT) | minimax (DSTC)"},
    )
    tests: Literal["ground_truth", "generated", "both"] = field(
        default="ground_truth",
        metadata={"help": "Rank on exec_matrix (ground_truth), gen_exec_matrix (generated) or both side by side"},
    )
    damping: float = field(default=0.85, metadata={"help": "self_validation damping factor d (CodeDPO: 0.85)"})
    iterations: int = field(default=10, metadata={"help": "self_validation iterations T (CodeDPO: 10)"})
    seed: int = field(default=0, metadata={"help": "Seed for deterministic tie-breaking (minimax)"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown ranking method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.tests not in TEST_SOURCES:
            raise ConfigError(f"unknown test source {self.tests!r}; choose one of {', '.join(TEST_SOURCES)}")
        if not 0.0 <= self.damping <= 1.0:
            raise ConfigError(f"damping must be in [0, 1], got {self.damping}")
        if self.iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {self.iterations}")


def row_matrix(row: dict, tests: str) -> np.ndarray:
    """The pass matrix of one row for the chosen test source (columns side by side for ``both``)."""
    n = len(row["samples"]) if "samples" in row else None
    parts = []
    for name, wanted in (("exec_matrix", ("ground_truth", "both")), ("gen_exec_matrix", ("generated", "both"))):
        if tests not in wanted:
            continue
        if row.get(name) is None:
            raise DataError(
                f"missing; rank with tests={tests!r} needs it (run execute first)",
                task_id=row.get("task_id"),
                field=name,
            )
        m = pass_matrix(row[name]) if len(row[name]) else np.zeros((n or 0, 0), bool)
        if n is not None and m.shape[0] != n:
            raise DataError(
                f"has {m.shape[0]} rows but the problem has {n} samples", task_id=row.get("task_id"), field=name
            )
        parts.append(m)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def score_matrix(r: np.ndarray, cfg: RankConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sample scores, test scores)`` of one problem under ``cfg.method``."""
    if cfg.method == "self_validation":
        return self_validation(r, cfg.damping, cfg.iterations)
    tests = r.sum(axis=0).astype(np.float64)
    if cfg.method == "dual_agreement":
        return dual_agreement(r), tests
    if cfg.method == "minimax":  # chosen code 1, rejected code -1, rest 0; tests likewise
        choice = minimax(r, seed)
        codes, tscores = np.zeros(r.shape[0]), np.zeros(r.shape[1])
        if choice.rejected_code is not None:
            codes[choice.rejected_code] = -1.0
        if choice.chosen_code is not None:
            codes[choice.chosen_code] = 1.0
        if choice.rejected_test is not None:
            tscores[choice.rejected_test] = -1.0
        if choice.chosen_test is not None:
            tscores[choice.chosen_test] = 1.0
        return codes, tscores
    return r.sum(axis=1).astype(np.float64), tests


def rank(ds: Dataset, cfg: RankConfig | None = None) -> Dataset:
    """Add ``score`` (per sample) and ``test_score`` (per test of the chosen source) columns."""
    cfg = cfg or RankConfig()

    def batch_fn(batch: dict[str, list]) -> dict[str, list]:
        scores, test_scores = [], []
        for i in range(len(batch["task_id"])):
            row = {k: v[i] for k, v in batch.items()}
            s, t = score_matrix(row_matrix(row, cfg.tests), cfg, row_seed(cfg.seed, row["task_id"]))
            scores.append(s.tolist())
            test_scores.append(t.tolist())
        return {"score": scores, "test_score": test_scores}

    out = ds.map(
        batch_fn,
        batched=True,
        batch_size=256,
        desc=None,
        new_fingerprint=config_fingerprint("rank", ds._fingerprint, cfg),
    )
    return with_provenance(out, "rank", config_to_dict(cfg), base=get_provenance(ds))
